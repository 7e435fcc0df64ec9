"""One module per file format; each exposes a Recording subclass and ``sniff``."""
