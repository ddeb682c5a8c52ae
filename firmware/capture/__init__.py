"""Frame sources: picamera2, OpenCV (USB, RTSP, file) and replay, behind one `FrameSource` protocol."""
