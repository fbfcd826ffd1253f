"""The inputs of every experiment: frozen language models (:mod:`.models`, :mod:`.tiny`) and
target texts (:mod:`.data`)."""
