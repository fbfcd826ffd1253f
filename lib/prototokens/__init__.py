"""prototokens: one-forward text reconstruction from two trained input vectors.

Companion library to Mezentsev & Oseledets, "Exploring the Hidden Capacity of LLMs for One-Step
Text Generation" (EMNLP 2025, arXiv 2505.21189). The notebooks under ``notebooks/`` are short
orchestrations of the calls re-exported here.
"""
from __future__ import annotations

__version__ = "0.1.0"
