"""`python -m vidlstm` is the `vidlstm` command."""
from vidlstm.cli import main

raise SystemExit(main())
