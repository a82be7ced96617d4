"""Training a model of the MNIST families: the recipe of a run, validated and per family (:mod:`.recipes`),
the trainer with its epochs, validation ELBO, early stopping and publication (:mod:`.trainer`), and the
per-epoch checkpoints a run resumes from (:mod:`.checkpoint`)."""
