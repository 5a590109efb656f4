"""Fashion-MNIST: verified fetching, a strict IDX reader, the split, preprocessing, augmentation
and sampling. Everything here is NumPy; no image-processing library.

Nothing is imported here: each stage imports the modules it uses, and depends on those alone.
"""
