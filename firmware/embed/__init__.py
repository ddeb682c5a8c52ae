"""From a detected face to an identity vector: quality gate, alignment to 112×112, MobileFaceNet embedding."""
