"""guidelinekg: a clinical practice guideline as a computable, publishable knowledge graph."""

__version__ = "0.1.0"
