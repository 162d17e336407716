package tiering

// CompressMemBytes lets external tests lower the in-memory bound of compressed data sections.
var CompressMemBytes = &compressMemBytes
