"""Fashion-MNIST: verified fetching, a strict IDX reader, the split, preprocessing, augmentation
and sampling. Everything here is NumPy; no image-processing library."""
