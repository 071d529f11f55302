package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func objectCommands() []command {
	return []command{
		{group: "objects", name: "list", summary: "list the objects of the metadata object index with the partitions and offsets they hold", setup: setupObjectsList},
		{group: "objects", name: "inspect", args: "KEY", summary: "read an object's footer and index from object storage: its streams and blocks", setup: setupObjectsInspect},
		{group: "objects", name: "cost", summary: "estimate the monthly object-storage bill from live request counters and stored bytes", setup: setupObjectsCost, ownDeadline: true},
	}
}

// The admin endpoints' answers (broker/admin_objects.go and
// broker.StorageView), as far as shoalctl reads them.

// objectsList is GET /admin/objects.
type objectsList struct {
	Objects        []objectEntry   `json:"objects"`
	Count          int             `json:"count"`
	Bytes          int64           `json:"bytes"`
	PendingDeletes []pendingDelete `json:"pending_deletes"`
}

type objectEntry struct {
	Key       string       `json:"key"`
	Size      int64        `json:"size"`
	Kind      string       `json:"kind"`
	CreatedMs int64        `json:"created_ms"`
	Created   string       `json:"created,omitempty"`
	Ranges    []rangeEntry `json:"ranges"`
}

type rangeEntry struct {
	Stream      uint64 `json:"stream"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"`
	Position    int64  `json:"position"`
	Size        int64  `json:"size"`
	Live        bool   `json:"live"`
}

type pendingDelete struct {
	Key           string `json:"key"`
	DeleteAfterMs int64  `json:"delete_after_ms"`
}

// objectInspection is GET /admin/objects/inspect.
type objectInspection struct {
	Key       string `json:"key"`
	Size      int64  `json:"size"`
	Kind      string `json:"kind"`
	CreatedMs int64  `json:"created_ms"`
	Footer    struct {
		Version       uint16 `json:"version"`
		IndexPosition int64  `json:"index_position"`
		IndexSize     int64  `json:"index_size"`
		IndexChecksum uint32 `json:"index_checksum"`
	} `json:"footer"`
	Streams []struct {
		Stream       uint64 `json:"stream"`
		Topic        string `json:"topic"`
		Partition    int32  `json:"partition"`
		StartOffset  int64  `json:"start_offset"`
		EndOffset    int64  `json:"end_offset"`
		Position     int64  `json:"position"`
		Size         int64  `json:"size"`
		MinTimestamp int64  `json:"min_timestamp"`
		MaxTimestamp int64  `json:"max_timestamp"`
		Blocks       int    `json:"blocks"`
	} `json:"streams"`
	Blocks []struct {
		Stream       uint64 `json:"stream"`
		Topic        string `json:"topic"`
		Partition    int32  `json:"partition"`
		StartOffset  int64  `json:"start_offset"`
		EndOffset    int64  `json:"end_offset"`
		MinTimestamp int64  `json:"min_timestamp"`
		MaxTimestamp int64  `json:"max_timestamp"`
		Position     int64  `json:"position"`
		StoredSize   int64  `json:"stored_size"`
		RawSize      int64  `json:"raw_size"`
		Codec        string `json:"codec"`
		Batches      uint32 `json:"batches"`
		Checksum     uint32 `json:"checksum"`
	} `json:"blocks"`
}

// storageView is GET /admin/storage (broker.StorageView): request counts
// per reason since the broker started.
type storageView struct {
	Requests    map[string]opCounts `json:"requests"`
	Objects     int                 `json:"objects"`
	ObjectBytes int64               `json:"object_bytes"`
}

// opCounts is s3stream.OpCounts (encoded without tags).
type opCounts struct {
	Put, Get, Head, Delete, List int64
	PutBytes, GetBytes           int64
	Errors                       int64
}

// partName names a stream's partition, "stream N" for a deleted topic's.
func partName(topic string, partition int32, stream uint64) string {
	if topic == "" {
		return "stream " + strconv.FormatUint(stream, 10)
	}
	return topic + "/" + strconv.Itoa(int(partition))
}

func setupObjectsList(fs *flag.FlagSet) runFunc {
	topic := fs.String("topic", "", "only the objects holding this `topic`, with only its ranges")
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) > 0 {
			return c.usagef("takes no arguments")
		}
		base, err := c.needAdmin()
		if err != nil {
			return err
		}
		path := "/admin/objects"
		if *topic != "" {
			path += "?topic=" + url.QueryEscape(*topic)
		}
		var l objectsList
		if err := c.adminGet(ctx, base, path, &l); err != nil {
			return err
		}
		return c.emit(l, func(w io.Writer) { writeObjectsList(w, l) })
	}
}

// maxRangesShown bounds the ranges listed in one table cell.
const maxRangesShown = 4

func writeObjectsList(w io.Writer, l objectsList) {
	rows := make([][]string, len(l.Objects))
	for i, o := range l.Objects {
		var rs []string
		for j, r := range o.Ranges {
			if j == maxRangesShown {
				rs = append(rs, fmt.Sprintf("(+%d more)", len(o.Ranges)-j))
				break
			}
			s := fmt.Sprintf("%s[%d,%d)", partName(r.Topic, r.Partition, r.Stream), r.StartOffset, r.EndOffset)
			if !r.Live {
				s += "(dead)"
			}
			rs = append(rs, s)
		}
		rows[i] = []string{o.Key, o.Kind, humanBytes(o.Size), msTime(o.CreatedMs), first(strings.Join(rs, " "), "-")}
	}
	writeTable(w, []string{"KEY", "KIND", "SIZE", "CREATED", "RANGES"}, rows)
	fmt.Fprintf(w, "\n%d objects, %s", l.Count, humanBytes(l.Bytes))
	if len(l.PendingDeletes) > 0 {
		fmt.Fprintf(w, "; %d more waiting for deletion", len(l.PendingDeletes))
	}
	fmt.Fprintln(w)
}

func setupObjectsInspect(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if len(args) != 1 {
			return c.usagef("needs exactly one object key (see objects list)")
		}
		base, err := c.needAdmin()
		if err != nil {
			return err
		}
		var ins objectInspection
		if err := c.adminGet(ctx, base, "/admin/objects/inspect?key="+url.QueryEscape(args[0]), &ins); err != nil {
			return err
		}
		return c.emit(ins, func(w io.Writer) { writeInspection(w, ins) })
	}
}

func writeInspection(w io.Writer, ins objectInspection) {
	f := ins.Footer
	writeFields(w, "Key", ins.Key, "Size", fmt.Sprintf("%s (%d bytes)", humanBytes(ins.Size), ins.Size),
		"Kind", first(ins.Kind, "(not in the metadata index)"), "Created", msTime(ins.CreatedMs),
		"Footer", fmt.Sprintf("format v%d, index at %d (%d bytes, crc32c %08x)", f.Version, f.IndexPosition, f.IndexSize, f.IndexChecksum))
	fmt.Fprintln(w)
	var rows [][]string
	for _, s := range ins.Streams {
		rows = append(rows, []string{strconv.FormatUint(s.Stream, 10), partName(s.Topic, s.Partition, s.Stream),
			fmt.Sprintf("[%d,%d)", s.StartOffset, s.EndOffset), strconv.FormatInt(s.Position, 10), humanBytes(s.Size),
			strconv.Itoa(s.Blocks), msTime(s.MinTimestamp), msTime(s.MaxTimestamp)})
	}
	writeTable(w, []string{"STREAM", "PARTITION", "OFFSETS", "POSITION", "SIZE", "BLOCKS", "FIRST-TIMESTAMP", "LAST-TIMESTAMP"}, rows)
	fmt.Fprintln(w)
	rows = rows[:0]
	for i, b := range ins.Blocks {
		rows = append(rows, []string{strconv.Itoa(i), partName(b.Topic, b.Partition, b.Stream),
			fmt.Sprintf("[%d,%d)", b.StartOffset, b.EndOffset), strconv.FormatInt(b.Position, 10),
			strconv.FormatInt(b.StoredSize, 10), strconv.FormatInt(b.RawSize, 10), b.Codec, strconv.Itoa(int(b.Batches))})
	}
	writeTable(w, []string{"BLOCK", "PARTITION", "OFFSETS", "POSITION", "STORED", "RAW", "CODEC", "BATCHES"}, rows)
}

// Cost worksheet constants.
const (
	// hoursPerMonth is the month AWS bills by.
	hoursPerMonth = 730
	// gib is the GB of S3 storage prices.
	gib = 1 << 30
)

// costSheet is objects cost's JSON.
type costSheet struct {
	Prices struct {
		PutPer1000        float64 `json:"put_per_1000"`
		GetPer1000        float64 `json:"get_per_1000"`
		StoragePerGBMonth float64 `json:"storage_per_gb_month"`
	} `json:"prices"`
	SampleSeconds float64 `json:"sample_seconds"`
	// Brokers are the admin URLs whose counters were summed.
	Brokers  []string      `json:"brokers"`
	Requests []reasonCost  `json:"requests"`
	Storage  []storageCost `json:"storage"`
	// Totals per month, in the prices' currency.
	RequestCost float64 `json:"request_cost_per_month"`
	StorageCost float64 `json:"storage_cost_per_month"`
	TotalCost   float64 `json:"total_cost_per_month"`
}

// reasonCost is the request rate and cost of one reason: PUT-class
// requests are PUT and LIST, GET-class GET and HEAD (S3's tiers); DELETE is
// free.
type reasonCost struct {
	Reason        string  `json:"reason"`
	PutPerMonth   float64 `json:"put_per_month"`
	GetPerMonth   float64 `json:"get_per_month"`
	DeletePerHour float64 `json:"delete_per_hour"`
	CostPerMonth  float64 `json:"cost_per_month"`
}

// storageCost is the stored bytes of one topic; "(overhead)" is the
// objects' indexes and footers, "(deleted topics)" ranges of deleted
// topics still stored.
type storageCost struct {
	Topic        string  `json:"topic"`
	Bytes        int64   `json:"bytes"`
	CostPerMonth float64 `json:"cost_per_month"`
}

func setupObjectsCost(fs *flag.FlagSet) runFunc {
	put := fs.Float64("put-price", 0.005, "price per 1000 PUT-class requests (PUT, LIST); default: AWS S3 Standard us-east-1")
	get := fs.Float64("get-price", 0.0004, "price per 1000 GET-class requests (GET, HEAD)")
	storage := fs.Float64("storage-price", 0.023, "price per GB-month stored (GB = 2^30 bytes)")
	sample := fs.Duration("sample", 10*time.Second, "how long to watch the request counters to measure their rate")
	return func(ctx context.Context, c *cli, args []string) error {
		switch {
		case len(args) > 0:
			return c.usagef("takes no arguments")
		case *put < 0 || *get < 0 || *storage < 0:
			return c.usagef("prices must not be negative")
		case *sample < 100*time.Millisecond:
			return c.usagef("--sample must be at least 100ms")
		}
		if _, err := c.needAdmin(); err != nil {
			return err
		}
		var sheet costSheet
		sheet.Prices.PutPer1000, sheet.Prices.GetPer1000, sheet.Prices.StoragePerGBMonth = *put, *get, *storage
		sheet.Brokers = c.admin
		before, err := c.sumStorageViews(ctx)
		if err != nil {
			return err
		}
		c.progress("sampling the request counters of %d broker(s) for %v...", len(c.admin), *sample)
		start := time.Now()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*sample):
		}
		after, err := c.sumStorageViews(ctx)
		if err != nil {
			return err
		}
		sheet.SampleSeconds = time.Since(start).Seconds()
		sheet.addRequests(before, after)
		var l objectsList
		if err := c.deadline(ctx, func(ctx context.Context) error { return c.adminGet(ctx, c.admin[0], "/admin/objects", &l) }); err != nil {
			return err
		}
		sheet.addStorage(l)
		sheet.TotalCost = sheet.RequestCost + sheet.StorageCost
		return c.emit(sheet, func(w io.Writer) { writeCostSheet(w, sheet) })
	}
}

// deadline runs fn with --timeout applied to ctx.
func (c *cli) deadline(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return fn(ctx)
}

// sumStorageViews reads GET /admin/storage of every admin URL and sums the
// request counts per reason.
func (c *cli) sumStorageViews(ctx context.Context) (map[string]opCounts, error) {
	sum := map[string]opCounts{}
	for _, base := range c.admin {
		var v storageView
		if err := c.deadline(ctx, func(ctx context.Context) error { return c.adminGet(ctx, base, "/admin/storage", &v) }); err != nil {
			return nil, err
		}
		for r, n := range v.Requests {
			s := sum[r]
			s.Put, s.Get, s.Head, s.Delete, s.List = s.Put+n.Put, s.Get+n.Get, s.Head+n.Head, s.Delete+n.Delete, s.List+n.List
			sum[r] = s
		}
	}
	return sum, nil
}

// addRequests fills in the request rates and costs from two counter
// readings SampleSeconds apart.
func (s *costSheet) addRequests(before, after map[string]opCounts) {
	perMonth := hoursPerMonth * 3600 / s.SampleSeconds
	for _, r := range sortedKeys(after) {
		a, b := after[r], before[r]
		rc := reasonCost{
			Reason:        r,
			PutPerMonth:   float64(a.Put-b.Put+a.List-b.List) * perMonth,
			GetPerMonth:   float64(a.Get-b.Get+a.Head-b.Head) * perMonth,
			DeletePerHour: float64(a.Delete-b.Delete) * 3600 / s.SampleSeconds,
		}
		rc.CostPerMonth = rc.PutPerMonth/1000*s.Prices.PutPer1000 + rc.GetPerMonth/1000*s.Prices.GetPer1000
		s.Requests = append(s.Requests, rc)
		s.RequestCost += rc.CostPerMonth
	}
	if s.Requests == nil {
		s.Requests = []reasonCost{}
	}
}

// addStorage fills in the stored bytes per topic from the object list.
func (s *costSheet) addStorage(l objectsList) {
	perTopic := map[string]int64{}
	var total int64
	for _, o := range l.Objects {
		total += o.Size
		left := o.Size
		for _, r := range o.Ranges {
			perTopic[first(r.Topic, "(deleted topics)")] += r.Size
			left -= r.Size
		}
		perTopic["(overhead)"] += left
	}
	s.Storage = []storageCost{}
	for _, t := range sortedKeys(perTopic) {
		cost := float64(perTopic[t]) / gib * s.Prices.StoragePerGBMonth
		s.Storage = append(s.Storage, storageCost{Topic: t, Bytes: perTopic[t], CostPerMonth: cost})
		s.StorageCost += cost
	}
}

func writeCostSheet(w io.Writer, s costSheet) {
	writeFields(w,
		"Prices", fmt.Sprintf("PUT/LIST $%g per 1000, GET/HEAD $%g per 1000, storage $%g per GB-month", s.Prices.PutPer1000, s.Prices.GetPer1000, s.Prices.StoragePerGBMonth),
		"Counters", fmt.Sprintf("%s, sampled for %.1fs, extrapolated to a %d-hour month", strings.Join(s.Brokers, " "), s.SampleSeconds, hoursPerMonth))
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(s.Requests)+1)
	for _, r := range s.Requests {
		rows = append(rows, []string{r.Reason, fmt.Sprintf("%.0f", r.PutPerMonth), fmt.Sprintf("%.0f", r.GetPerMonth), fmt.Sprintf("%.1f", r.DeletePerHour), money(r.CostPerMonth)})
	}
	rows = append(rows, []string{"total", "", "", "", money(s.RequestCost)})
	writeTable(w, []string{"REASON", "PUT/MONTH", "GET/MONTH", "DELETE/HOUR", "COST/MONTH"}, rows)
	fmt.Fprintln(w)
	rows = rows[:0]
	var bytes int64
	for _, t := range s.Storage {
		rows = append(rows, []string{t.Topic, humanBytes(t.Bytes), money(t.CostPerMonth)})
		bytes += t.Bytes
	}
	rows = append(rows, []string{"total", humanBytes(bytes), money(s.StorageCost)})
	writeTable(w, []string{"TOPIC", "STORED", "COST/MONTH"}, rows)
	fmt.Fprintf(w, "\nEstimate: %s requests + %s storage = %s per month\n", money(s.RequestCost), money(s.StorageCost), money(s.TotalCost))
	fmt.Fprintln(w, "(Requests are counted per broker and per reason, not per topic; give every broker's admin URL to --admin, comma-separated, to cover the cluster.)")
}

// money formats an amount with enough digits for small bills.
func money(v float64) string {
	if v != 0 && v < 0.01 {
		return fmt.Sprintf("$%.6f", v)
	}
	return fmt.Sprintf("$%.2f", v)
}
