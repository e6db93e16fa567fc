package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// eachElement streams the array under key of the JSON object in r (or r
// itself when it is an array, if bare is true), decoding one element at a
// time with fn, so that a file of a million objects is never held whole.
// Other members of the object are skipped. fn gets the element's index.
// It returns an error wrapping ErrFormat for a document that is not such
// an object, or is cut short, and found=false when key is absent.
func eachElement(r io.Reader, key string, bare bool, fn func(i int, dec *json.Decoder) error) (found bool, err error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return false, jsonErr(err)
	}
	switch tok {
	case json.Delim('['):
		if !bare {
			return false, fmt.Errorf("%w: a JSON array, want an object with %q", ErrFormat, key)
		}
		return true, elements(dec, fn)
	case json.Delim('{'):
	default:
		return false, fmt.Errorf("%w: not a JSON object", ErrFormat)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return found, jsonErr(err)
		}
		name, _ := t.(string)
		if name != key {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return found, jsonErr(err)
			}
			continue
		}
		found = true
		t, err = dec.Token()
		if err != nil {
			return found, jsonErr(err)
		}
		if t == nil { // "key": null
			continue
		}
		if t != json.Delim('[') {
			return found, fmt.Errorf("%w: %q is not an array", ErrFormat, key)
		}
		if err := elements(dec, fn); err != nil {
			return found, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return found, jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return found, fmt.Errorf("%w: data after the end of the JSON document", ErrFormat)
	}
	return found, nil
}

// elements decodes the elements of an array whose '[' was read, and its ']'.
func elements(dec *json.Decoder, fn func(i int, dec *json.Decoder) error) error {
	for i := 0; dec.More(); i++ {
		if err := fn(i, dec); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return jsonErr(err)
}

// jsonErr makes a decoding error an error of the file, saying where.
func jsonErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the JSON document is cut short (truncated file?)", ErrFormat)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("%w: bad JSON at byte %d: %v", ErrFormat, se.Offset, se)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return err
}

// decodeElement decodes one element into v; an element of the wrong shape
// (a string where an object is wanted) is a Problem of that element, not
// of the file, when the decoder can go on.
func decodeElement(dec *json.Decoder, v any) (problem string, err error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return "", jsonErr(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return "not the object expected: " + err.Error(), nil
	}
	return "", nil
}
