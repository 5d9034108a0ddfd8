// Package httpapi serves keygate's management API as plain net/http
// handlers. The same handlers run in Lambda, behind aws-lambda-go-api-proxy,
// and in the local gateway.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// Error codes of the envelope.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodePayloadTooLarge = "payload_too_large"
	CodeRateLimited     = "rate_limited"
	CodeInternal        = "internal"
	CodeUnavailable     = "unavailable"
)

// Envelope is every response body.
type Envelope struct {
	Success    bool   `json:"success"`
	Data       any    `json:"data,omitempty"`
	NextCursor string `json:"nextCursor,omitempty"`
	Message    string `json:"message,omitempty"`
	// Warnings tell of a valid request that is likely a mistake.
	Warnings []string  `json:"warnings,omitempty"`
	Error    *APIError `json:"error,omitempty"`
}

// APIError is the error part of the envelope.
type APIError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId,omitempty"`
}

// writeJSON writes an envelope (or, for a caller that wants another
// format, any body), or writes nothing and returns the error if
// it cannot be encoded, so that no answer is ever cut off half-way. HTML
// characters are not escaped, so that metadata is returned byte for byte
// as stored; nosniff keeps a browser from reading the JSON as anything else.
func writeJSON(w http.ResponseWriter, status int, body any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// WriteData answers with a successful envelope holding v.
func WriteData(w http.ResponseWriter, status int, v any) error {
	return writeJSON(w, status, Envelope{Success: true, Data: v})
}

// WritePage answers with a page of a listing and the cursor of the next.
func WritePage(w http.ResponseWriter, items any, next string) error {
	return writeJSON(w, http.StatusOK, Envelope{Success: true, Data: items, NextCursor: next})
}

// WriteMessage answers with a successful envelope holding a message.
func WriteMessage(w http.ResponseWriter, status int, msg string) error {
	return writeJSON(w, status, Envelope{Success: true, Message: msg})
}

// WriteError answers with the envelope for err: the one place where domain
// errors become HTTP statuses. A 5xx never carries err's text; the log does,
// with the request id.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, code, msg := statusOf(err)
	reqID := requestID(r)
	var limited *keys.RateLimitedError
	if errors.As(err, &limited) && limited.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(authorizer.RetryAfterSeconds(limited.RetryAfter), 10))
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "requestId", reqID, "method", r.Method,
			"path", token.Redact(r.URL.Path), "error", token.Redact(err.Error()))
	}
	_ = writeJSON(w, status, Envelope{Error: &APIError{Code: code, Message: msg, RequestID: reqID}}) // strings only: cannot fail
}

// statusOf maps an error to its HTTP status, envelope code and message.
func statusOf(err error) (status int, code, message string) {
	var invalid *keys.InvalidError
	var tooLarge *http.MaxBytesError
	var conflict *keys.ConflictError
	var forbidden *keys.ForbiddenError
	var unauthorized *keys.UnauthorizedError
	var limited *keys.RateLimitedError
	switch {
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, CodeRateLimited, limited.Message
	case errors.As(err, &unauthorized):
		return http.StatusUnauthorized, CodeUnauthorized, unauthorized.Message
	case errors.As(err, &invalid):
		return http.StatusBadRequest, CodeBadRequest, invalid.Error()
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, CodePayloadTooLarge, fmt.Sprintf("request body is larger than %d KB", tooLarge.Limit>>10)
	case errors.Is(err, keys.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, "API key not found"
	case errors.As(err, &conflict):
		return http.StatusConflict, CodeConflict, conflict.Message
	case errors.Is(err, keys.ErrConflict):
		return http.StatusConflict, CodeConflict, "the resource changed concurrently; retry"
	case errors.As(err, &forbidden):
		return http.StatusForbidden, CodeForbidden, forbidden.Message
	case errors.Is(err, keys.ErrForbidden):
		return http.StatusForbidden, CodeForbidden, "forbidden"
	case errors.Is(err, keys.ErrCallerInactive):
		return http.StatusUnauthorized, CodeUnauthorized, "the calling API key is no longer active"
	case errors.Is(err, keys.ErrUnauthorized):
		return http.StatusUnauthorized, CodeUnauthorized, "a valid API key is required"
	case errors.Is(err, keys.ErrUnavailable):
		return http.StatusServiceUnavailable, CodeUnavailable, "the service is briefly unavailable; retry"
	}
	return http.StatusInternalServerError, CodeInternal, "internal error"
}
