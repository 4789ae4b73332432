"""`seqchat ask`: answer one question about sequences from FASTA files or the command line."""

from __future__ import annotations

import argparse

from seqchat.errors import SeqChatInputError
from seqchat.sequences import guess_modality, make_sequence, read_fasta


def _sequences(args: argparse.Namespace) -> dict:
    seqs: dict = {}
    for path in args.fasta or []:
        for s in read_fasta(path, args.modality):
            if s.name in seqs:
                raise SeqChatInputError(f"sequence id '{s.name}' appears in more than one FASTA file")
            seqs[s.name] = s
    for item in args.seq or []:
        name, sep, residues = item.partition("=")
        if not sep:
            raise SeqChatInputError(f"--seq takes NAME=RESIDUES, got '{item[:30]}'")
        seqs[name] = make_sequence(residues, args.modality or guess_modality(residues), name)
    return seqs


def run_ask(args: argparse.Namespace) -> int:
    """Answer once and exit."""
    from seqchat.serving.api import SeqChat

    seqs = _sequences(args)
    bot = SeqChat.load(model=args.model, config=args.config)
    answer = bot.ask(args.question, seqs, max_new_tokens=args.max_new_tokens)
    print(answer)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ask` subcommand."""
    p = sub.add_parser("ask", help="answer one question about sequences (refer to them as @id)")
    p.add_argument("question", help='e.g. "Is there a promoter in @seq1?"')
    p.add_argument("--fasta", action="append", help="FASTA file(s); records are named by their ids")
    p.add_argument("--seq", action="append", help="an inline sequence as NAME=RESIDUES")
    p.add_argument("--modality", choices=["dna", "rna", "protein"], help="force the modality (else guessed)")
    p.add_argument("--model", help="trained model folder (default: the shipped model)")
    p.add_argument("--config", help="build an untrained architecture from this YAML instead")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.set_defaults(func=run_ask)

