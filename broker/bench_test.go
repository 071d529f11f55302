package broker

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduce measures acks=all idempotent produce throughput of 1 KiB
// records over 8 partitions through a kgo client (b.N records).
func BenchmarkProduce(b *testing.B) {
	br := startBroker(b)
	name := uniqueNames()("bench")
	createTopic(b, br, name, 8)
	cl := newClient(b, br, kgo.DefaultProduceTopic(name), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := make([]byte, 1<<20+1024)
	rand.Read(pool) // incompressible values, each record a different slice
	b.SetBytes(1024)
	b.ResetTimer()
	for i := range b.N {
		off := (i * 1031) % (1 << 20)
		cl.Produce(ctx, &kgo.Record{Value: pool[off : off+1024]}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
