package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// emit writes v as JSON with --output json, else calls table.
func (c *cli) emit(v any, table func(w io.Writer)) error {
	if c.output == "json" {
		return writeJSON(c.stdout, v)
	}
	table(c.stdout)
	return nil
}

// writeJSON writes v as indented JSON (keys in struct order, no HTML
// escaping), the stable format for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeTable writes rows under header, aligned in columns.
func writeTable(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// writeFields writes label/value pairs as aligned "label: value" lines.
func writeFields(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
	}
	tw.Flush()
}

// ints formats a list of ids as "1,2,3".
func ints[T ~int32 | ~int64](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = strconv.FormatInt(int64(v), 10)
	}
	return strings.Join(s, ",")
}

// optInt formats an optional number, "-" for none.
func optInt(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// humanBytes formats a byte count in binary units: 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// msTime formats Unix milliseconds as RFC 3339 UTC, "-" for 0 or less.
func msTime(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// orderedObject is a JSON object with its keys in document order.
type orderedObject []objectField

type objectField struct {
	key string
	val any
}

// decodeOrdered decodes one JSON value, keeping object keys in order:
// objects become orderedObject, arrays []any, numbers json.Number.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var obj orderedObject
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, objectField{k.(string), v})
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}

// renderJSON shows a JSON document of unknown shape for humans: an
// object's scalar fields as "key: value" lines, its arrays of objects as
// tables (one column per key), nested objects as indented sections.
func renderJSON(w io.Writer, data []byte) error {
	v, err := decodeOrdered(data)
	if err != nil {
		return err
	}
	renderValue(w, "", v)
	return nil
}

func renderValue(w io.Writer, title string, v any) {
	switch v := v.(type) {
	case orderedObject:
		if title != "" {
			fmt.Fprintf(w, "%s:\n", title)
		}
		var pairs []string
		var nested []objectField
		for _, f := range v {
			if isScalar(f.val) {
				pairs = append(pairs, f.key, cell(f.val))
			} else {
				nested = append(nested, f)
			}
		}
		writeFields(w, pairs...)
		for _, f := range nested {
			fmt.Fprintln(w)
			renderValue(w, joinTitle(title, f.key), f.val)
		}
	case []any:
		if title != "" {
			fmt.Fprintf(w, "%s:\n", title)
		}
		renderArray(w, v)
	default:
		writeFields(w, title, cell(v))
	}
}

func joinTitle(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// renderArray writes an array of objects as a table (columns: every key,
// nested objects' keys dotted, in order of first appearance) and anything
// else one value per line.
func renderArray(w io.Writer, arr []any) {
	var cols []string
	flat := make([]orderedObject, len(arr))
	for i, e := range arr {
		obj, ok := e.(orderedObject)
		if !ok {
			for _, e := range arr {
				fmt.Fprintln(w, cell(e))
			}
			return
		}
		flat[i] = flatten("", obj, nil)
		for _, f := range flat[i] {
			if !slices.Contains(cols, f.key) {
				cols = append(cols, f.key)
			}
		}
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = strings.ToUpper(strings.ReplaceAll(c, "_", "-"))
	}
	rows := make([][]string, len(flat))
	for i, obj := range flat {
		row := make([]string, len(cols))
		for j := range row {
			row[j] = "-"
		}
		for _, f := range obj {
			row[slices.Index(cols, f.key)] = cell(f.val)
		}
		rows[i] = row
	}
	writeTable(w, header, rows)
}

// flatten appends obj's fields to out, the fields of nested objects under
// dotted keys (prefix.key).
func flatten(prefix string, obj orderedObject, out orderedObject) orderedObject {
	for _, f := range obj {
		if nested, ok := f.val.(orderedObject); ok {
			out = flatten(prefix+f.key+".", nested, out)
			continue
		}
		out = append(out, objectField{prefix + f.key, f.val})
	}
	return out
}

// isScalar reports whether v shows in one cell: not an object, and not an
// array holding objects or arrays.
func isScalar(v any) bool {
	switch v := v.(type) {
	case orderedObject:
		return false
	case []any:
		for _, e := range v {
			if !isScalar(e) {
				return false
			}
		}
	}
	return true
}

// cell formats a decoded JSON value for a table cell: scalars as they are,
// arrays of scalars comma-separated, anything else as compact JSON.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		if isScalar(v) {
			s := make([]string, len(v))
			for i, e := range v {
				s[i] = cell(e)
			}
			return strings.Join(s, ",")
		}
	}
	var b bytes.Buffer
	writeCompact(&b, v)
	return b.String()
}

// writeCompact writes a decoded value back as compact JSON.
func writeCompact(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case orderedObject:
		b.WriteByte('{')
		for i, f := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.key)
			b.Write(k)
			b.WriteByte(':')
			writeCompact(b, f.val)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCompact(b, e)
		}
		b.WriteByte(']')
	default:
		out, _ := json.Marshal(v)
		b.Write(out)
	}
}
