"""Neural networks: spiking encoders, CNN decoders, classifiers and E-SAI's RefocusNet."""
