"""The model: typed config, sequence tokenizers, encoders, projectors, decoders, the processor and the model.

What belongs here: everything that turns sequences and a conversation into tensors and tensors into tokens
(`SeqChatProcessor` expands `@name` references into K placeholder tokens; `SeqChatForConditionalGeneration`
takes those tensors and never holds task logic), and where models come from (`hub`). Nothing here knows the
task registry, the data sources, training recipes or the command line. Lowest layer: imports only
`seqchat.errors`.
"""
