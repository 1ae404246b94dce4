"""Pictures: the IR as a Graphviz graph (`ir_graph`, behind `adjit graph`) and the eager tape as
torchviz draws it (`make_dot`)."""
