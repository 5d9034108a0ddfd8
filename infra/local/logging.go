package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keygate/keygate/pkg/token"
)

// The log formats of -log.
const (
	// logText is for a terminal: one short line per request, and the
	// warnings and errors.
	logText = "text"
	// logJSON is for machines: every record, as the Lambda functions write
	// them to CloudWatch (three per request: authorizer, function, gateway).
	logJSON = "json"
)

// newLogger logs in format to w. Whatever the format, every message and
// value is redacted: a key in a URL or an error never reaches the log,
// whichever package logs it.
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	var h slog.Handler
	switch format {
	case logText:
		h = &textHandler{w: w, mu: &sync.Mutex{}}
	case logJSON:
		h = slog.NewJSONHandler(w, nil)
	default:
		return nil, fmt.Errorf("-log %q: want %s or %s", format, logText, logJSON)
	}
	return slog.New(redacting{h}), nil
}

// redacting passes records on with token.Redact applied to every message
// and value.
type redacting struct{ next slog.Handler }

func (h redacting) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h redacting) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, token.Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	return redacting{h.next.WithAttrs(redactAttrs(attrs))}
}

func (h redacting) WithGroup(name string) slog.Handler { return redacting{h.next.WithGroup(name)} }

func redactAttrs(attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return out
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, token.Redact(v.String()))
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(redactAttrs(v.Group())...)}
	case slog.KindAny:
		// An error, a Stringer, a struct: what could hold a key is its
		// text, so it is logged as its text.
		return slog.String(a.Key, token.Redact(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// gatewayRecord is the message of internal/gateway's record of a request.
const gatewayRecord = "gateway"

// textHandler writes one line per request, from the gateway's record:
//
//	12:00:01 GET /v1/api-keys 200 3.1ms key_0123ab… allowed
//
// and one line per warning or error. It leaves out the authorizer's and the
// function's records of each request, which the gateway's line sums up.
type textHandler struct {
	mu     *sync.Mutex // shared by the handlers WithAttrs and WithGroup make
	w      io.Writer
	attrs  []slog.Attr // from WithAttrs, their keys qualified by their groups
	prefix string      // the groups of WithGroup, each followed by "."
}

func (h *textHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var line string
	switch {
	case r.Level >= slog.LevelWarn:
		line = h.recordLine(r)
	case r.Message == gatewayRecord && h.prefix == "":
		line = requestLine(r)
	default:
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line+"\n")
	return err
}

func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), qualify(h.prefix, attrs)...)
	return &c
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix += name + "."
	return &c
}

// requestLine reads the gateway's record (see internal/gateway's
// incoming.logAttrs): time, method, path?query, status, latency, the key
// id of the authorizer's policy, shortened, and the authorizer's answer.
func requestLine(r slog.Record) string {
	v := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		v[a.Key] = a.Value.String()
		return true
	})
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05") + " " + v["method"] + " " + v["path"])
	if v["query"] != "" {
		b.WriteString("?" + v["query"])
	}
	b.WriteString(" " + v["status"])
	if ms, err := strconv.ParseFloat(v["latencyMs"], 64); err == nil {
		fmt.Fprintf(&b, " %.1fms", ms)
	}
	for _, s := range []string{shorten(v["principal"]), v["authorizer"]} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	return b.String()
}

// shorten cuts a key id (key_ and 24 hex digits) to what tells keys apart
// on one screen.
func shorten(principal string) string {
	const keep = len("key_") + 6
	if len(principal) <= keep+1 {
		return principal
	}
	return principal[:keep] + "…"
}

// recordLine is a warning or error: time, level, message, then key=value.
func (h *textHandler) recordLine(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05") + " " + r.Level.String() + " " + r.Message)
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, qualify(h.prefix, []slog.Attr{a})...)
		return true
	})
	for _, a := range attrs {
		b.WriteString(" " + a.Key + "=" + quoteIfNeeded(a.Value.String()))
	}
	return b.String()
}

// qualify flattens groups into dotted keys under prefix; a group without
// a key is inlined, as slog asks.
func qualify(prefix string, attrs []slog.Attr) []slog.Attr {
	var out []slog.Attr
	for _, a := range attrs {
		v := a.Value.Resolve()
		switch {
		case v.Kind() != slog.KindGroup:
			out = append(out, slog.Attr{Key: prefix + a.Key, Value: v})
		case a.Key == "":
			out = append(out, qualify(prefix, v.Group())...)
		default:
			out = append(out, qualify(prefix+a.Key+".", v.Group())...)
		}
	}
	return out
}

// quoteIfNeeded quotes a value a reader could not tell where it ends.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}
