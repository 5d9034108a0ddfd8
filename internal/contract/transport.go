package contract

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Transport is an http.RoundTripper that checks every exchange it carries
// against the document (Check), for tests whose requests a client makes:
// the Go client's and the CLI's. base nil is http.DefaultTransport.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return checking{t: t, base: base}
}

type checking struct {
	t    testing.TB
	base http.RoundTripper
}

func (c checking) RoundTrip(req *http.Request) (*http.Response, error) {
	var sent []byte
	if req.Body != nil {
		var err error
		if sent, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(sent))
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	Check(c.t, req, sent, Response{Status: resp.StatusCode, Header: resp.Header, Body: got})
	return resp, nil
}
