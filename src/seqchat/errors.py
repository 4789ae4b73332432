"""The one error type users see for bad input."""


class SeqChatInputError(ValueError):
    """Bad user input (sequence, FASTA, prompt, config); the message says what to fix."""
