"""How the models are fitted: the AEVB step with its E-, M- and joint phases (:mod:`.aevb`), the queue of
phases a page plays (:mod:`.schedule`) and, for factor analysis, maximum likelihood by closed-form EM
(:mod:`.fa_em`), the reference the AEVB fit is compared with."""
