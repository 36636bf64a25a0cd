"""The homogeneous benchmark track: the GNN on Tolokers and on graphs in files of your own."""

