package integration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a hand-driven Kafka connection: requests are framed with
// kmsg's RequestFormatter, responses are read and decoded here, so a test
// controls every byte (and may send bad ones with writeRaw).
type rawConn struct {
	t        testing.TB
	c        net.Conn
	corr     int32
	fmt      *kmsg.RequestFormatter
	versions map[int16]int16 // max version per API key, from ApiVersions
}

// dialRaw connects to addr and learns the broker's API versions.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	r := dialRawNoVersions(t, addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "shoal-integration", "1.0"
	resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: error code %d", resp.ErrorCode)
	}
	r.versions = map[int16]int16{}
	for _, k := range resp.ApiKeys {
		r.versions[k.ApiKey] = k.MaxVersion
	}
	return r
}

// dialRawNoVersions connects without sending anything.
func dialRawNoVersions(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// version sets req to the highest version both kmsg and the broker know.
func (r *rawConn) version(req kmsg.Request) {
	max, ok := r.versions[req.Key()]
	if !ok {
		r.t.Fatalf("broker does not serve %s", kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(max, req.MaxVersion()))
}

// send writes req (at the version it has) and returns its correlation id.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	r.writeRaw(r.fmt.AppendRequest(nil, req, r.corr))
	return r.corr
}

// writeRaw writes bytes as they are.
func (r *rawConn) writeRaw(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readResponse reads the response to a request of kind req with the given
// correlation id.
func (r *rawConn) readResponse(req kmsg.Request, corr int32) (kmsg.Response, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 || n < 4 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.c, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 { // ApiVersions answers with header v0
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// roundTrip sends req and returns its response, failing the test on error.
func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	resp, err := r.readResponse(req, r.send(req))
	if err != nil {
		r.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed reads until the broker closes the connection, failing the
// test if it sends a response frame or stays open for 10 s.
func (r *rawConn) expectClosed(what string) {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := r.c.Read(buf)
		total += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Errorf("%s: connection still open after 10 s (%d bytes received)", what, total)
			} else if total > 0 {
				r.t.Errorf("%s: got %d bytes before the close, want none", what, total)
			}
			return
		}
	}
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[w:]
	for range n {
		_, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[w:]
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return nil, errors.New("bad tag length")
		}
		b = b[w+int(l):]
	}
	return b, nil
}

// testRecord is a record of a hand-built batch.
type testRecord struct {
	key, value []byte
	headers    []kmsg.Header
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch encodes an uncompressed magic-2 record batch of recs with the
// producer fields given (pid -1 for a non-idempotent batch).
func makeBatch(pid int64, epoch int16, seq int32, ts int64, recs []testRecord) []byte {
	var records []byte
	for i, tr := range recs {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: tr.key, Value: tr.value, Headers: tr.headers}
		body := rec.AppendTo(nil)[1:] // encoded with Length 0: a one-byte varint
		rec.Length = int32(len(body))
		records = rec.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(recs)),
		Records:              records,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

// makeMagic1 encodes a legacy magic-1 message set of one message.
func makeMagic1(key, value []byte) []byte {
	msg := []byte{1, 0}                                                      // magic, attributes
	msg = binary.BigEndian.AppendUint64(msg, uint64(time.Now().UnixMilli())) // timestamp
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(key)))
	msg = append(msg, key...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(value)))
	msg = append(msg, value...)
	crc := crc32.ChecksumIEEE(msg)
	var out []byte
	out = binary.BigEndian.AppendUint64(out, 0)                  // offset
	out = binary.BigEndian.AppendUint32(out, uint32(4+len(msg))) // message size
	out = binary.BigEndian.AppendUint32(out, crc)
	return append(out, msg...)
}

// produceRequest builds a Produce request of one batch to topic/partition.
func (r *rawConn) produceRequest(topic string, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	r.version(req)
	if req.Version > 12 {
		req.SetVersion(12) // v13+ names topics by id; this client uses names
	}
	req.Acks, req.TimeoutMillis = acks, 10000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition, p.Records = partition, batch
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// produce sends one batch with acks=all and returns the partition's
// response.
func (r *rawConn) produce(topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	r.t.Helper()
	return r.sendProduce(r.produceRequest(topic, partition, -1, batch))
}

// sendProduce sends a Produce request of one partition and returns the
// partition's response.
func (r *rawConn) sendProduce(req *kmsg.ProduceRequest) kmsg.ProduceResponseTopicPartition {
	r.t.Helper()
	resp := r.roundTrip(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("produce response: %d topics", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// fetchAll fetches topic/partition from offset 0 and returns the high
// watermark and every record batch header with its records' values.
func (r *rawConn) fetchAll(topic string, partition int32) (hw int64, batches []kmsg.RecordBatch, values [][]byte) {
	r.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	r.version(req)
	if req.Version > 12 {
		req.SetVersion(12) // v13+ names topics by id; this client uses names
	}
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 0, 16<<20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = partition, 0, 16<<20, -1
	fp.LogStartOffset = -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := r.roundTrip(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		r.t.Fatalf("fetch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		r.t.Fatalf("fetch %s/%d: error code %d", topic, partition, p.ErrorCode)
	}
	rest := p.RecordBatches
	for len(rest) >= 12 {
		n := int(binary.BigEndian.Uint32(rest[8:])) + 12
		if n > len(rest) {
			break // a partial batch at the end of a fetch is legal
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(rest[:n]); err != nil {
			r.t.Fatalf("fetch: bad batch: %v", err)
		}
		if got := crc32.Checksum(rest[21:n], castagnoli); got != uint32(b.CRC) {
			r.t.Fatalf("fetch: batch at %d: CRC %08x, computed %08x", b.FirstOffset, uint32(b.CRC), got)
		}
		batches = append(batches, b)
		values = append(values, recordValues(r.t, b)...)
		rest = rest[n:]
	}
	return p.HighWatermark, batches, values
}

// recordValues decodes the values of an uncompressed batch.
func recordValues(t testing.TB, b kmsg.RecordBatch) [][]byte {
	t.Helper()
	var out [][]byte
	rest := b.Records
	for range b.NumRecords {
		l, w := binary.Varint(rest)
		if w <= 0 || int(l) > len(rest)-w {
			t.Fatalf("bad record length in batch at %d", b.FirstOffset)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(rest[:w+int(l)]); err != nil {
			t.Fatalf("bad record in batch at %d: %v", b.FirstOffset, err)
		}
		out = append(out, rec.Value)
		rest = rest[w+int(l):]
	}
	return out
}

// initProducerID asks for an idempotent producer id.
func (r *rawConn) initProducerID() (int64, int16) {
	r.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	r.version(req)
	req.TransactionTimeoutMillis = -1
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp := r.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		r.t.Fatalf("InitProducerId: error code %d", resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}
