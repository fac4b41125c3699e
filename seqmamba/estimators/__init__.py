"""scikit-learn estimators over DNA: `MambaSequenceClassifier` and `MambaEmbedder`."""

from .classifier import MambaSequenceClassifier
from .embedder import MambaEmbedder, load_model_dir

__all__ = ["MambaEmbedder", "MambaSequenceClassifier", "load_model_dir"]
