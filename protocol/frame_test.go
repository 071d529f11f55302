package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/shoal-io/shoal/protocol"
	"github.com/shoal-io/shoal/protocol/prototest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sizePrefixed(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestReadFrame(t *testing.T) {
	two := append(sizePrefixed([]byte("abc")), sizePrefixed([]byte{})...)
	tests := []struct {
		name    string
		in      []byte
		max     int32
		want    [][]byte
		wantErr error
	}{
		{"two frames then EOF", two, 10, [][]byte{[]byte("abc"), {}}, io.EOF},
		{"empty stream", nil, 10, nil, io.EOF},
		{"at max", sizePrefixed([]byte("abcd")), 4, [][]byte{[]byte("abcd")}, io.EOF},
		{"over max", sizePrefixed([]byte("abcde")), 4, nil, protocol.ErrFrameTooLarge},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe, 1, 2}, 10, nil, protocol.ErrFrameTooLarge},
		{"truncated size", []byte{0, 0}, 10, nil, protocol.ErrTruncated},
		{"truncated body", []byte{0, 0, 0, 5, 'a', 'b'}, 10, nil, protocol.ErrTruncated},
		{"size without body", []byte{0, 0, 0, 5}, 10, nil, protocol.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			var got [][]byte
			for {
				b, err := protocol.ReadFrame(r, tt.max)
				if err != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					break
				}
				got = append(got, b)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d frames, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("frame %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadFrameTooLargeReadsNoBody(t *testing.T) {
	// A 2 GiB claim must fail at once, before reading or allocating the body.
	in := append([]byte{0x7f, 0xff, 0xff, 0xff}, make([]byte, 100)...)
	cr := &countingReader{r: bytes.NewReader(in)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := protocol.ReadFrame(cr, protocol.DefaultMaxRequestSize)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, protocol.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if cr.n != 4 {
		t.Errorf("read %d bytes, want only the 4-byte size", cr.n)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("allocated %d bytes, want no body allocation", n)
	}
}

// header builds a request header: key, version, correlation id, and unless
// noClientID a nullable client id, then tags (nil = no tag section).
func header(key, version int16, corr int32, clientID *string, tags []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	return append(b, tags...)
}

func body(r kmsg.Request, version int16) []byte {
	r.SetVersion(version)
	return r.AppendTo(nil)
}

func TestParseRequestHeader(t *testing.T) {
	cid := kmsg.StringPtr("client-1")
	meta := func() kmsg.Request { m := kmsg.NewPtrMetadataRequest(); return m }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// ControlledShutdown v0 uses header v0: no client id at all.
	cs := kmsg.NewPtrControlledShutdownRequest()
	cs.BrokerID = 3
	csV0 := cat(header(7, 0, 42, nil, nil)[:8], body(cs, 0))
	// One unknown header tag (tag 5, 2 bytes) in a flexible header.
	oneTag := []byte{1, 5, 2, 0xaa, 0xbb}

	tests := []struct {
		name     string
		frame    []byte
		wantKey  int16
		wantVer  int16
		wantCorr int32
		wantID   *string
		wantErr  error
	}{
		{"v1 header", cat(header(3, 4, 7, cid, nil), body(meta(), 4)), 3, 4, 7, cid, nil},
		{"v1 null client id", cat(header(3, 4, 7, nil, nil), body(meta(), 4)), 3, 4, 7, nil, nil},
		{"v2 header no tags", cat(header(3, 12, 8, cid, []byte{0}), body(meta(), 12)), 3, 12, 8, cid, nil},
		{"v2 header with a tag", cat(header(3, 12, 9, cid, oneTag), body(meta(), 12)), 3, 12, 9, cid, nil},
		{"v0 header", csV0, 7, 0, 42, nil, nil},
		{"v2 header missing tag section", header(3, 12, 10, cid, nil), 3, 12, 10, cid, protocol.ErrMalformed},
		{"v2 header tag overruns", header(3, 12, 11, cid, []byte{1, 5, 9, 0}), 3, 12, 11, cid, protocol.ErrMalformed},
		{"short header", []byte{0, 3, 0, 4, 0, 0}, 0, 0, 0, nil, protocol.ErrMalformed},
		{"client id overruns", header(3, 4, 12, cid, nil)[:12], 3, 4, 12, nil, protocol.ErrMalformed},
		{"truncated body", cat(header(0, 3, 13, cid, nil), []byte{0xff}), 0, 3, 13, cid, protocol.ErrMalformed},
		{"unknown api key", header(9999, 0, 14, cid, nil), 9999, 0, 14, cid, protocol.ErrUnknownAPIKey},
		{"unknown api key no client id", header(9999, 0, 15, cid, nil)[:8], 9999, 0, 15, nil, protocol.ErrUnknownAPIKey},
		{"version too new", header(3, 999, 16, cid, []byte{0}), 3, 999, 16, cid, protocol.ErrUnsupportedVersion},
		{"negative version", header(3, -1, 17, cid, nil), 3, -1, 17, cid, protocol.ErrUnsupportedVersion},
		// KIP-511: a too-new ApiVersions still yields its header.
		{"api versions too new", header(18, 999, 18, cid, []byte{0}), 18, 999, 18, cid, protocol.ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, req, err := protocol.ParseRequest(tt.frame)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if (err == nil) != (req != nil) {
				t.Fatalf("req = %v with err %v", req, err)
			}
			if h.APIKey != tt.wantKey || h.APIVersion != tt.wantVer || h.CorrelationID != tt.wantCorr {
				t.Errorf("header = %d v%d corr %d, want %d v%d corr %d",
					h.APIKey, h.APIVersion, h.CorrelationID, tt.wantKey, tt.wantVer, tt.wantCorr)
			}
			if (h.ClientID == nil) != (tt.wantID == nil) || h.ClientID != nil && *h.ClientID != *tt.wantID {
				t.Errorf("client id = %v, want %v", h.ClientID, tt.wantID)
			}
			if req != nil && (req.Key() != tt.wantKey || req.GetVersion() != tt.wantVer) {
				t.Errorf("request is key %d v%d", req.Key(), req.GetVersion())
			}
		})
	}
	t.Run("controlled shutdown v0 body", func(t *testing.T) {
		_, req, err := protocol.ParseRequest(csV0)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.(*kmsg.ControlledShutdownRequest).BrokerID; got != 3 {
			t.Errorf("broker id = %d, want 3", got)
		}
	})
}

// TestParseRequestRoundTrip frames requests exactly as franz-go clients do
// and checks that ParseRequest gives back the same request.
func TestParseRequestRoundTrip(t *testing.T) {
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 2
	pp.Records = prototest.Batch(prototest.Values("a", "bb", "ccc"), prototest.WithProducer(11, 1, 0))
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis = 500
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 1, 1234, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("orders")
	meta.Topics = append(meta.Topics, mt)

	apiv := kmsg.NewPtrApiVersionsRequest()
	apiv.ClientSoftwareName, apiv.ClientSoftwareVersion = "shoal-test", "1.0"

	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "orders"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 0, -1
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)

	tests := []struct {
		req      kmsg.Request
		versions []int16
	}{
		{produce, []int16{3, 7, 8, 9, 11}},
		{fetch, []int16{4, 11, 12, 13}},
		{meta, []int16{0, 4, 8, 9, 12}},
		{apiv, []int16{0, 2, 3, 4}},
		{list, []int16{1, 5, 6, 8}},
	}
	for _, tt := range tests {
		for _, v := range tt.versions {
			if v > tt.req.MaxVersion() {
				continue
			}
			tt.req.SetVersion(v)
			frame := prototest.Frame(tt.req, 77, "rt-client")
			h, got, err := protocol.ParseRequest(frame[4:])
			if err != nil {
				t.Fatalf("key %d v%d: %v", tt.req.Key(), v, err)
			}
			if h.CorrelationID != 77 || h.ClientID == nil || *h.ClientID != "rt-client" {
				t.Errorf("key %d v%d: header %+v", tt.req.Key(), v, h)
			}
			if got.Key() != tt.req.Key() || got.GetVersion() != v {
				t.Errorf("key %d v%d: parsed key %d v%d", tt.req.Key(), v, got.Key(), got.GetVersion())
			}
			if want, have := tt.req.AppendTo(nil), got.AppendTo(nil); !bytes.Equal(want, have) {
				t.Errorf("key %d v%d: re-encoded body differs:\n got %x\nwant %x", tt.req.Key(), v, have, want)
			}
		}
	}
	// Spot-check decoded content, not only the re-encoding.
	produce.SetVersion(9)
	_, got, err := protocol.ParseRequest(prototest.Frame(produce, 1, "c")[4:])
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*kmsg.ProduceRequest)
	if p.Acks != -1 || p.Topics[0].Topic != "orders" || p.Topics[0].Partitions[0].Partition != 2 {
		t.Errorf("decoded produce = %+v", p)
	}
	if _, err := protocol.ValidateBatch(p.Topics[0].Partitions[0].Records); err != nil {
		t.Errorf("records in decoded produce: %v", err)
	}
}

func TestAppendResponse(t *testing.T) {
	apiv := kmsg.NewPtrApiVersionsResponse()
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 0, 3, 11
	apiv.ApiKeys = append(apiv.ApiKeys, k)

	meta := kmsg.NewPtrMetadataResponse()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 1, "localhost", 9092
	meta.Brokers = append(meta.Brokers, b)

	tests := []struct {
		name    string
		resp    kmsg.Response
		version int16
		tagByte bool
	}{
		{"api versions v0", apiv, 0, false},
		{"api versions v3 keeps header v0", apiv, 3, false},
		{"api versions v4 keeps header v0", apiv, 4, false},
		{"metadata v8 header v0", meta, 8, false},
		{"metadata v9 header v1", meta, 9, true},
		{"metadata v12 header v1", meta, 12, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.resp.SetVersion(tt.version)
			prefix := []byte("keep")
			out := protocol.AppendResponse(append([]byte(nil), prefix...), 0x01020304, tt.resp)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("dst prefix overwritten")
			}
			frame := out[len(prefix):]
			if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
				t.Fatalf("size prefix %d for %d bytes", size, len(frame)-4)
			}
			if corr := binary.BigEndian.Uint32(frame[4:]); corr != 0x01020304 {
				t.Errorf("correlation id %x", corr)
			}
			rest := frame[8:]
			if tt.tagByte {
				if rest[0] != 0 {
					t.Fatalf("header tag section = %x, want 00", rest[0])
				}
				rest = rest[1:]
			}
			if !bytes.Equal(rest, tt.resp.AppendTo(nil)) {
				t.Errorf("body differs from kmsg encoding")
			}
			// A client (kmsg) decodes the body back.
			back := tt.resp.RequestKind().ResponseKind()
			back.SetVersion(tt.version)
			if err := back.ReadFrom(rest); err != nil {
				t.Errorf("kmsg cannot read body back: %v", err)
			}
		})
	}
}
