package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// goodClient produces to topic through kgo until stopped, recording what
// was acknowledged, and consumes concurrently, so that bad input on other
// connections is seen not to disturb a well-behaved client.
type goodClient struct {
	log  ackLog
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startGoodClient(t *testing.T, b *Broker, topic string) *goodClient {
	g := &goodClient{log: ackLog{acked: map[string]recordPos{}}}
	ctx, cancel := context.WithCancel(t.Context())
	g.stop = cancel
	t.Cleanup(func() { cancel(); g.wg.Wait() })
	prod := b.Client(t, kgo.DefaultProduceTopic(topic))
	cons := b.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			v := fmt.Sprintf("good-%d", n)
			r, err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).First()
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("good client: produce %s: %v", v, err)
				}
				return
			}
			g.log.mu.Lock()
			g.log.acked[v] = recordPos{r.Partition, r.Offset}
			g.log.mu.Unlock()
		}
	}()
	go func() {
		defer g.wg.Done()
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil {
					t.Errorf("good client: fetch: %v", err)
				}
			})
		}
	}()
	return g
}

// TestBadInput sends malformed and refused requests to a running shoald
// and checks that each gets the Kafka-specified answer or a closed
// connection, that a well-behaved client keeps working throughout, and
// that no data is damaged.
func TestBadInput(t *testing.T) {
	b := StartBroker(t, WithArgs("--max-request-size", "1MiB"))
	createTopic(t, b, "good", 2)
	createTopic(t, b, "raw", 1)
	good := startGoodClient(t, b, "good")
	Eventually(t, 30*time.Second, func() error {
		if n := good.log.count(); n < 50 {
			return fmt.Errorf("good client: %d records acknowledged", n)
		}
		return nil
	})

	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 20 {
			r := dialRawNoVersions(t, b.Addr)
			junk := make([]byte, 16+rng.IntN(4096))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
			if i%2 == 0 { // a plausible size, then garbage
				binary.BigEndian.PutUint32(junk, uint32(len(junk)-4))
			}
			r.writeRaw(junk)
			r.c.(*net.TCPConn).CloseWrite()
			r.expectClosed(fmt.Sprintf("random bytes #%d", i))
		}
	})
	t.Run("frame over the size limit", func(t *testing.T) {
		r := dialRawNoVersions(t, b.Addr)
		r.writeRaw(binary.BigEndian.AppendUint32(nil, 2<<20)) // 2 MiB > 1 MiB, body never sent
		r.expectClosed("oversized frame")
		r = dialRawNoVersions(t, b.Addr)
		r.writeRaw(binary.BigEndian.AppendUint32(nil, 0xffffffff)) // negative size
		r.expectClosed("negative frame size")
	})
	t.Run("truncated frame then close", func(t *testing.T) {
		r := dialRawNoVersions(t, b.Addr)
		frame := kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrMetadataRequest(), 1)
		r.writeRaw(frame[:len(frame)/2])
		r.c.Close()
		// The broker must still answer on a new connection.
		dialRaw(t, b.Addr)
	})
	t.Run("unknown api key", func(t *testing.T) {
		r := dialRawNoVersions(t, b.Addr)
		hdr := binary.BigEndian.AppendUint16(nil, 9999)  // api key
		hdr = binary.BigEndian.AppendUint16(hdr, 0)      // version
		hdr = binary.BigEndian.AppendUint32(hdr, 7)      // correlation id
		hdr = binary.BigEndian.AppendUint16(hdr, 0xffff) // null client id
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
		r.writeRaw(append(frame, hdr...))
		r.expectClosed("unknown api key")
	})
	t.Run("unsupported version", func(t *testing.T) {
		r := dialRawNoVersions(t, b.Addr)
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(99)
		r.send(req)
		r.expectClosed("Metadata v99")

		// ApiVersions answers an unknown version with UNSUPPORTED_VERSION
		// and its version ranges in a v0 body (KIP-511).
		r = dialRawNoVersions(t, b.Addr)
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(99)
		corr := r.send(av)
		v0 := kmsg.NewPtrApiVersionsRequest() // decode the answer as v0
		resp, err := r.readResponse(v0, corr)
		if err != nil {
			t.Fatalf("ApiVersions v99: %v", err)
		}
		avr := resp.(*kmsg.ApiVersionsResponse)
		if avr.ErrorCode != kerr.UnsupportedVersion.Code || len(avr.ApiKeys) == 0 {
			t.Errorf("ApiVersions v99: error %d, %d keys; want UNSUPPORTED_VERSION and the ranges", avr.ErrorCode, len(avr.ApiKeys))
		}
	})

	ts := time.Now().UnixMilli()
	t.Run("bad crc", func(t *testing.T) {
		r := dialRaw(t, b.Addr)
		batch := makeBatch(-1, -1, -1, ts, seqRecords("crc", 3))
		batch[len(batch)-1] ^= 0xff // corrupt the last record byte
		p := r.produce("raw", 0, batch)
		if p.ErrorCode != kerr.CorruptMessage.Code {
			t.Errorf("bad CRC: error %d (%v), want CORRUPT_MESSAGE", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
		// The connection stays usable.
		p = r.produce("raw", 0, makeBatch(-1, -1, -1, ts, seqRecords("ok", 4)))
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("good batch after the bad one: error %d, base offset %d, want 0 and 0", p.ErrorCode, p.BaseOffset)
		}
	})
	t.Run("unknown topic", func(t *testing.T) {
		r := dialRaw(t, b.Addr)
		p := r.produce("no-such-topic", 0, makeBatch(-1, -1, -1, ts, seqRecords("x", 1)))
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("unknown topic: error %d (%v), want UNKNOWN_TOPIC_OR_PARTITION", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
		p = r.produce("raw", 7, makeBatch(-1, -1, -1, ts, seqRecords("x", 1)))
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("unknown partition: error %d (%v), want UNKNOWN_TOPIC_OR_PARTITION", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
	})
	t.Run("magic 1", func(t *testing.T) {
		r := dialRaw(t, b.Addr)
		p := r.produce("raw", 0, makeMagic1([]byte("k"), []byte("legacy")))
		if p.ErrorCode != kerr.UnsupportedForMessageFormat.Code {
			t.Errorf("magic 1: error %d (%v), want UNSUPPORTED_FOR_MESSAGE_FORMAT", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
	})
	t.Run("refused batches store nothing", func(t *testing.T) {
		r := dialRaw(t, b.Addr)
		hw, _, values := r.fetchAll("raw", 0)
		if hw != 4 || len(values) != 4 {
			t.Fatalf("raw: high watermark %d, %d records, want 4 and 4 (only the good batch)", hw, len(values))
		}
		for i, v := range values {
			if want := fmt.Sprintf("ok-%d", i); string(v) != want {
				t.Errorf("raw offset %d: %q, want %q", i, v, want)
			}
		}
	})

	// The good client kept going; everything it was acknowledged is intact.
	n := good.log.count()
	Eventually(t, 30*time.Second, func() error {
		if good.log.count() < n+50 {
			return fmt.Errorf("good client stalled at %d records", good.log.count())
		}
		return nil
	})
	good.stop()
	good.wg.Wait()
	end := endOffsets(t, b, "good")
	recs := consumeUntil(t, b, "good", end, 60*time.Second)
	checkDense(t, recs, end)
	checkAcked(t, &good.log, recs)
}
