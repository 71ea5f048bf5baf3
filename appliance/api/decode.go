package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxRequestBytes is the largest request body the API reads.
const MaxRequestBytes = 64 << 10

// requestError is a request the handler refuses before the Backend sees
// it; status is the HTTP status to answer with.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: "decode request: " + fmt.Sprintf(format, args...)}
}

// decodeRequest decodes a JSON request body into v (a pointer to a
// struct). It insists on a JSON Content-Type, at most MaxRequestBytes, a
// single JSON object, and no fields v does not have.
func decodeRequest(contentType string, body io.Reader, v any) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if contentType == "" || err != nil || mt != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("decode request: Content-Type must be application/json, not %q", contentType)}
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxRequestBytes+1))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	if len(raw) > MaxRequestBytes {
		return &requestError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("decode request: body is larger than %d bytes", MaxRequestBytes)}
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest("body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return badRequest("body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("expected %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "slice" || goKind == "array":
		return "an array"
	case goKind == "struct" || goKind == "map":
		return "an object"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	}
	return goKind
}
