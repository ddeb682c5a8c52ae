"""Face detection: BlazeFace full-range on a letterboxed frame, decoded to boxes and six keypoints."""
