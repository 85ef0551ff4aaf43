package ecrtest

import (
	"crypto/tls"
	"net/http"
)

// insertTransport reaches the emulator's own data plane (its certificate is self-signed).
func insecureTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the emulator talking to itself in tests
	return t
}
