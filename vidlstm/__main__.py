"""`python -m vidlstm` is the `vidlstm` command."""
from vidlstm.cli import entry

entry()
