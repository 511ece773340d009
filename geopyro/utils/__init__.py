"""Small applications built on geopyro (echo server)."""
