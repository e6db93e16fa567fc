package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// MaxBodySize bounds a request body in bytes. The largest valid request (a
// thousand signals) is far smaller.
const MaxBodySize = 1 << 20

// decodeBody reads exactly one JSON object from r into v, a pointer to a
// request struct. Every problem is a *FieldError that names the field as a
// JSON path: unknown fields, values of the wrong type, trailing data.
func decodeBody(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fieldErr("body", "larger than %d bytes", tooLarge.Limit)
	case err != nil:
		return fieldErr("body", "%v", err)
	case len(bytes.TrimSpace(data)) == 0:
		return fieldErr("body", "empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(data, reflect.TypeOf(v).Elem(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("body", "unexpected data after the JSON object")
	}
	return nil
}

// describeDecodeError turns an encoding/json error into a FieldError.
// encoding/json names an unknown field without its path and a mistyped
// field without array indices, so the body is walked again against t to
// find the exact place.
func describeDecodeError(data []byte, t reflect.Type, err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fieldErr("body", "not valid JSON at byte %d: %v", syntax.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("body", "not valid JSON: it ends too early")
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&tree) == nil {
		if path, problem, found := locate(tree, t, ""); found {
			return fieldErr(path, "%s", problem)
		}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, uerr := strconv.Unquote(name); uerr == nil {
			name = n
		}
		return fieldErr(joinPath("", name), "unknown field")
	}
	return fieldErr("body", "%v", err)
}

// joinPath names the member key of the object at path. A key that is
// not a plain name (letters, digits, '_', '-') is quoted, as in
// `body["a\nb"]`, so that an error never carries a raw control character
// or a misleading dot from the client's input.
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain && path == "":
		return "body[" + strconv.Quote(key) + "]"
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// locate finds the first place (in sorted key order) where the JSON value
// v does not fit the Go type t. It follows encoding/json's rules: null
// fits anything, field names match case-insensitively.
func locate(v any, t reflect.Type, path string) (at, problem string, found bool) {
	if v == nil {
		return "", "", false
	}
	where := path
	if where == "" {
		where = "body"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return locate(v, t.Elem(), path)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return where, "want an object, got " + jsonKind(v), true
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub := joinPath(path, k)
			f, ok := fieldByName(t, k)
			if !ok {
				return sub, "unknown field", true
			}
			if at, problem, found := locate(obj[k], f.Type, sub); found {
				return at, problem, found
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return where, "want an array, got " + jsonKind(v), true
		}
		for i, e := range arr {
			if at, problem, found := locate(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); found {
				return at, problem, found
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return where, "want a string, got " + jsonKind(v), true
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return where, "want true or false, got " + jsonKind(v), true
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return where, "want an integer, got " + jsonKind(v), true
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return where, "want an integer, got " + string(n), true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return where, "want an integer, got " + jsonKind(v), true
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return where, fmt.Sprintf("want an integer from 0 to %d, got %s", uint64(1)<<t.Bits()-1, n), true
		}
	}
	return "", "", false
}

// fieldByName finds the struct field that encoding/json would fill from
// the JSON key name: an exact match of the json tag first, then a
// case-insensitive one.
func fieldByName(t reflect.Type, name string) (reflect.StructField, bool) {
	var fold reflect.StructField
	folded := false
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
		if !folded && strings.EqualFold(tag, name) {
			fold, folded = f, true
		}
	}
	return fold, folded
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
