"""The inputs of every experiment: frozen language models (:mod:`.models`: embedded GGUFs, hub ids,
local folders; :mod:`.architectures`: random-init models of real shapes) and target texts
(:mod:`.data`)."""
