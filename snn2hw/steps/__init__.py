"""The pipeline's steps as library functions over option dataclasses (:mod:`.options`):
calibrate (:mod:`.pipeline`), evaluate (:mod:`.evaluate`), export (:mod:`.deploy`),
run (:mod:`.run`), the sparsity report (:mod:`.report`) and a backend's own format
(:mod:`.write`). Shared settings are resolved in :mod:`.settings`."""
