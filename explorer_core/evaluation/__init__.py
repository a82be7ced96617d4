"""Measuring trained models on the test set: the ELBO and its terms, the IWAE bound, the FA evidence and
gap, Hungarian cluster accuracy (:mod:`.metrics`), and choosing among seeds by validation ELBO only
(:mod:`.selection`)."""
