// Package rest holds the HTTP plumbing every OpenStack-compatible API shares:
// strict JSON decoding, JSON responses, request IDs and fault rendering in
// each API's own shape.
package rest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 1 << 20

// Decode reads one JSON value from r's body into v. Unknown fields are
// rejected when strict is true (Keystone rejects them; others ignore them).
// Every failure is a fault.Invalid with a message a client can act on.
func Decode(r *http.Request, v any, strict bool) error {
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return fault.New(fault.TooLarge, "Request body is larger than %d bytes.", MaxBodyBytes)
		case errors.Is(err, io.EOF):
			return fault.Invalidf("The request body is empty; a JSON object is required.")
		case errors.As(err, &se):
			return fault.Invalidf("Malformed JSON in request body at offset %d.", se.Offset)
		case errors.As(err, &te):
			if te.Field != "" {
				return fault.Invalidf("Invalid input for field '%s': expected %s.", te.Field, te.Type)
			}
			return fault.Invalidf("Invalid input: expected %s.", te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.TrimPrefix(err.Error(), "json: unknown field ")
			return fault.Invalidf("Invalid input: additional property %s is not allowed.", field)
		default:
			return fault.Invalidf("Malformed JSON in request body.")
		}
	}
	if dec.More() {
		return fault.Invalidf("Malformed JSON in request body: trailing data after the JSON value.")
	}
	return nil
}

// JSON writes v as a JSON response with status code.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// Shape renders err as one API's fault body.
type Shape func(err error) any

// Fault writes err with its status and the body shape, logging the cause of
// internal errors (which the client never sees).
func Fault(w http.ResponseWriter, r *http.Request, shape Shape, err error) {
	status := fault.Status(err)
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", RequestID(r.Context()), "err", err)
	}
	JSON(w, status, shape(err))
}

type requestIDKey struct{}

// RequestIDHeader is the header OpenStack uses to correlate a request across services.
const RequestIDHeader = "X-Openstack-Request-Id"

// WithRequestID gives every request an ID (req-<uuid>), puts it in the
// context and echoes it in the response, so one ID follows a request through
// every hop. A request that already has one (an outer router gave it) keeps
// it, so services may use this whether or not they are mounted behind it.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) != "" {
			next.ServeHTTP(w, r)
			return
		}
		id := NewRequestID()
		w.Header().Set(RequestIDHeader, id)
		w.Header().Set("X-Compute-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh request ID in OpenStack's req-<uuid> form.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("req-%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// Origin is the scheme and host the client addressed, such as
// http://127.0.0.1:8080: the base of links when no public URL is configured.
func Origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
