"""seqchat: chat about DNA, RNA and protein sequences."""

from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import Sequence, make_sequence, read_fasta

__version__ = "0.1.0"
__all__ = ["Sequence", "SeqChatInputError", "make_sequence", "read_fasta", "__version__"]
