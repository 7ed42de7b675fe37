import socket

PORT = 0  # replaced by the test with its HTTP server's port


def predict(live_features, live_benchmark_models):
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as conn:
        conn.sendall(b"GET /exfiltrate HTTP/1.0\r\n\r\n")
        conn.recv(100)
    return live_features["feature_0000"].rank(pct=True).to_frame("prediction")


MODEL = predict
