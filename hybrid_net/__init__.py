"""Neural networks: spiking encoders, CNN decoders, and classifiers."""
