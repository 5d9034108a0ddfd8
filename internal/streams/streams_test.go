package streams_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// Short enough that the tests take seconds; every wait on a result is
// bounded by waitFor, many times longer.
const (
	pollInterval = 50 * time.Millisecond
	waitFor      = 20 * time.Second
)

// newTable makes a table with its stream and writes an item for each
// partition key, in order.
func newTable(t *testing.T, pks ...string) (*dynamodb.Client, string) {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{})
	for _, pk := range pks {
		put(t, client, table, pk)
	}
	return client, table
}

func put(t *testing.T, client *dynamodb.Client, table, pk string) {
	t.Helper()
	_, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: "ITEM"},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// run runs streams.Run until the test ends, and then checks that it
// returned nil.
func run(t *testing.T, streamsClient *dynamodbstreams.Client, client *dynamodb.Client, table string, opts streams.Options, h streams.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- streams.Run(ctx, streamsClient, client, table, opts, h) }()
	// Registered after NewTable's, so it runs before the table is deleted.
	t.Cleanup(func() {
		cancel()
		if err := <-returned; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// pks are the partition keys of records.
func pks(records []events.DynamoDBEventRecord) string {
	var out []string
	for _, r := range records {
		out = append(out, r.Change.Keys["pk"].String())
	}
	return strings.Join(out, " ")
}

// journal records what Run did, in order: each invocation's partition keys
// and whether it failed, and each batch handed to OnFailure.
type journal struct {
	mu      sync.Mutex
	entries []string
	grew    chan struct{} // signalled on each entry
}

func newJournal() *journal { return &journal{grew: make(chan struct{}, 1)} }

func (j *journal) add(entry string) {
	j.mu.Lock()
	j.entries = append(j.entries, entry)
	j.mu.Unlock()
	select {
	case j.grew <- struct{}{}:
	default:
	}
}

func (j *journal) read() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// await waits until the journal holds n entries, and fails the test if that
// takes longer than waitFor.
func (j *journal) await(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if got := j.read(); len(got) >= n {
			return got
		}
		select {
		case <-j.grew:
		case <-deadline:
			t.Fatalf("after %v, %d entries, want %d:\n\t%s", waitFor, len(j.read()), n, strings.Join(j.read(), "\n\t"))
		}
	}
}

func TestRunBatchesRetriesAndBisects(t *testing.T) {
	t.Parallel()
	keys := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint("KEY#", i))
		}
		return out
	}
	errFailed := errors.New("failed")
	for _, c := range []struct {
		name string
		opts streams.Options
		pks  []string
		// fails tells whether the handler fails a batch it has been given
		// `before` times already.
		fails func(ctx context.Context, pks string, before int) error
		want  []string
	}{
		{
			name: "in order, in batches of BatchSize, the last once its window has passed",
			opts: streams.Options{BatchSize: 3, BatchingWindow: 200 * time.Millisecond},
			pks:  keys(10),
			want: []string{"KEY#0 KEY#1 KEY#2", "KEY#3 KEY#4 KEY#5", "KEY#6 KEY#7 KEY#8", "KEY#9"},
		},
		{
			name: "a failing batch is retried before anything after it",
			opts: streams.Options{BatchSize: 2, MaxRetries: -1},
			pks:  keys(4),
			fails: func(_ context.Context, pks string, before int) error {
				if strings.Contains(pks, "KEY#1") && before < 2 {
					return errFailed
				}
				return nil
			},
			want: []string{"KEY#0 KEY#1 failed", "KEY#0 KEY#1 failed", "KEY#0 KEY#1", "KEY#2 KEY#3"},
		},
		{
			name: "out of retries, a batch goes to OnFailure, and the shard moves on",
			opts: streams.Options{BatchSize: 2, MaxRetries: 2},
			pks:  keys(4),
			fails: func(_ context.Context, pks string, _ int) error {
				if strings.Contains(pks, "KEY#1") {
					return errFailed
				}
				return nil
			},
			want: []string{"KEY#0 KEY#1 failed", "KEY#0 KEY#1 failed", "KEY#0 KEY#1 failed", "on failure: KEY#0 KEY#1: failed", "KEY#2 KEY#3"},
		},
		{
			name: "bisected down to the poison record, which alone goes to OnFailure",
			opts: streams.Options{BatchSize: 8, Bisect: true, MaxRetries: 1},
			pks:  keys(8),
			fails: func(_ context.Context, pks string, _ int) error {
				if strings.Contains(pks, "KEY#5") {
					return errFailed
				}
				return nil
			},
			want: []string{
				"KEY#0 KEY#1 KEY#2 KEY#3 KEY#4 KEY#5 KEY#6 KEY#7 failed",
				"KEY#0 KEY#1 KEY#2 KEY#3",
				"KEY#4 KEY#5 KEY#6 KEY#7 failed",
				"KEY#4 KEY#5 failed",
				"KEY#4",
				"KEY#5 failed", "KEY#5 failed", "on failure: KEY#5: failed",
				"KEY#6 KEY#7",
			},
		},
		{
			name: "a panic is a failure",
			opts: streams.Options{BatchSize: 2, MaxRetries: -1},
			pks:  keys(2),
			fails: func(_ context.Context, _ string, before int) error {
				if before == 0 {
					panic("poison")
				}
				return nil
			},
			want: []string{"KEY#0 KEY#1 failed", "KEY#0 KEY#1"},
		},
		{
			name: "an invocation past its timeout has failed",
			opts: streams.Options{BatchSize: 2, MaxRetries: -1, Timeout: 100 * time.Millisecond},
			pks:  keys(2),
			fails: func(ctx context.Context, _ string, before int) error {
				if before == 0 {
					<-ctx.Done() // and then "succeeds", too late
				}
				return nil
			},
			want: []string{"KEY#0 KEY#1 failed", "KEY#0 KEY#1"},
		},
		{
			name: "records no filter matches invoke nothing, nor count in a batch",
			// The window outlasts the reads that fill the first batch.
			opts: streams.Options{BatchSize: 2, BatchingWindow: 3 * time.Second, Filters: []string{
				`{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}`,
				`{"dynamodb": {"Keys": {"pk": {"S": ["REFUSALS#acme"]}}}}`,
			}},
			pks:  []string{"KEY#0", "USAGE#KEY#0", "REFUSALS#acme", "CONFIG", "KEY#1", "REFUSALS#other"},
			want: []string{"KEY#0 REFUSALS#acme", "KEY#1"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client, table := newTable(t, c.pks...)
			j := newJournal()
			given := map[string]int{}
			c.opts.PollInterval = pollInterval
			c.opts.OnFailure = func(_ context.Context, records []events.DynamoDBEventRecord, err error) {
				j.add(fmt.Sprintf("on failure: %s: %v", pks(records), err))
			}
			handler := func(ctx context.Context, ev events.DynamoDBEvent) (err error) {
				batch := pks(ev.Records)
				before := given[batch] // a table of DynamoDB Local has one shard, whose invocations never overlap
				given[batch]++
				defer func() { j.add(batch + map[bool]string{true: " failed", false: ""}[err != nil || ctx.Err() != nil]) }()
				defer func() {
					if p := recover(); p != nil {
						err = errFailed
						panic(p)
					}
				}()
				if c.fails == nil {
					return nil
				}
				return c.fails(ctx, batch, before)
			}
			run(t, ddbtest.StreamsClient(t), client, table, c.opts, handler)
			if got := j.await(t, len(c.want)); !slices.Equal(got, c.want) {
				t.Errorf("Run did\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}

// TestRunDeliversEachChange: an item's insert, update and delete arrive as
// Lambda delivers them, with both images and the stream's ARN.
func TestRunDeliversEachChange(t *testing.T) {
	t.Parallel()
	client, table := newTable(t, "KEY#k")
	ctx := t.Context()
	key := map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "KEY#k"}, "sk": &ddbtypes.AttributeValueMemberS{Value: "ITEM"}}
	if _, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &table, Key: key, UpdateExpression: aws.String("SET uses = :n"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberN{Value: "2"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key}); err != nil {
		t.Fatal(err)
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}

	delivered := make(chan events.DynamoDBEvent, 1)
	run(t, ddbtest.StreamsClient(t), client, table, streams.Options{BatchSize: 10, PollInterval: pollInterval}, func(_ context.Context, ev events.DynamoDBEvent) error {
		delivered <- ev
		return nil
	})
	var ev events.DynamoDBEvent
	select {
	case ev = <-delivered:
	case <-time.After(waitFor):
		t.Fatalf("no invocation after %v", waitFor)
	}
	if len(ev.Records) != 3 {
		t.Fatalf("%d records, want the 3 changes in one batch: %+v", len(ev.Records), ev.Records)
	}
	image := func(m map[string]events.DynamoDBAttributeValue) string {
		if m == nil {
			return "none"
		}
		uses := "-"
		if u, ok := m["uses"]; ok {
			uses = u.Number()
		}
		return m["pk"].String() + " uses " + uses
	}
	want := []struct{ name, newImage, oldImage string }{
		{"INSERT", "KEY#k uses -", "none"},
		{"MODIFY", "KEY#k uses 2", "KEY#k uses -"},
		{"REMOVE", "none", "KEY#k uses 2"},
	}
	for i, r := range ev.Records {
		c := r.Change
		if r.EventName != want[i].name || image(c.NewImage) != want[i].newImage || image(c.OldImage) != want[i].oldImage {
			t.Errorf("record %d: %s, new %s, old %s; want %+v", i, r.EventName, image(c.NewImage), image(c.OldImage), want[i])
		}
		if r.EventSource != "aws:dynamodb" || r.EventSourceArn != aws.ToString(desc.Table.LatestStreamArn) || r.EventVersion == "" || r.EventID == "" || r.AWSRegion == "" {
			t.Errorf("record %d: source %q, ARN %q (want %q), version %q, id %q, region %q", i, r.EventSource, r.EventSourceArn, aws.ToString(desc.Table.LatestStreamArn), r.EventVersion, r.EventID, r.AWSRegion)
		}
		if c.Keys["pk"].String() != "KEY#k" || c.Keys["sk"].String() != "ITEM" || len(c.Keys) != 2 || c.StreamViewType != "NEW_AND_OLD_IMAGES" || c.SizeBytes <= 0 || c.ApproximateCreationDateTime.IsZero() {
			t.Errorf("record %d: keys %v, view %s, size %d, created %v", i, c.Keys, c.StreamViewType, c.SizeBytes, c.ApproximateCreationDateTime)
		}
		if i > 0 && !sequenceBefore(ev.Records[i-1].Change.SequenceNumber, c.SequenceNumber) {
			t.Errorf("sequence numbers %s then %s: not increasing", ev.Records[i-1].Change.SequenceNumber, c.SequenceNumber)
		}
	}
}

// sequenceBefore compares sequence numbers: decimal numbers without sign.
func sequenceBefore(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	return len(a) < len(b) || len(a) == len(b) && a < b
}

// TestRunGathersUntilTheBatchIsFull: records written one by one while Run
// waits make one batch, once it is full, long before the window ends.
func TestRunGathersUntilTheBatchIsFull(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	j := newJournal()
	run(t, ddbtest.StreamsClient(t), client, table, streams.Options{BatchSize: 4, BatchingWindow: time.Hour, PollInterval: pollInterval},
		func(_ context.Context, ev events.DynamoDBEvent) error {
			j.add(pks(ev.Records))
			return nil
		})
	for i := range 4 {
		put(t, client, table, fmt.Sprint("KEY#", i))
		time.Sleep(2 * pollInterval) // most likely a read of its own
	}
	if got, want := j.await(t, 1), []string{"KEY#0 KEY#1 KEY#2 KEY#3"}; !slices.Equal(got, want) {
		t.Errorf("batches %q, want %q", got, want)
	}
}

// TestRunDeliversWithinPollIntervalAndWindow: a write reaches the handler
// within a poll and a batching window (bounded here with seconds to spare).
func TestRunDeliversWithinPollIntervalAndWindow(t *testing.T) {
	t.Parallel()
	client, table := newTable(t, "KEY#warm-up")
	opts := streams.Options{BatchSize: 100, BatchingWindow: time.Second, PollInterval: 250 * time.Millisecond}
	delivered := make(chan string, 2)
	run(t, ddbtest.StreamsClient(t), client, table, opts, func(_ context.Context, ev events.DynamoDBEvent) error {
		delivered <- pks(ev.Records)
		return nil
	})
	await := func(want string, within time.Duration) {
		t.Helper()
		select {
		case got := <-delivered:
			if got != want {
				t.Fatalf("delivered %q, want %q", got, want)
			}
		case <-time.After(within):
			t.Fatalf("%s not delivered within %v", want, within)
		}
	}
	await("KEY#warm-up", waitFor) // Run has started
	put(t, client, table, "KEY#1")
	await("KEY#1", opts.PollInterval+opts.BatchingWindow+5*time.Second)
}

func TestRunStopsWhenCtxEnds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		handler streams.Handler
	}{
		{"idle", func(context.Context, events.DynamoDBEvent) error { return nil }},
		{"retrying a batch that always fails", func(context.Context, events.DynamoDBEvent) error { return errors.New("failed") }},
		{"in an invocation", func(ctx context.Context, _ events.DynamoDBEvent) error { <-ctx.Done(); return ctx.Err() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client, table := newTable(t, "KEY#0")
			invoked := make(chan struct{}, 1)
			var failures []string
			opts := streams.Options{BatchSize: 1, MaxRetries: -1, PollInterval: pollInterval,
				OnFailure: func(_ context.Context, records []events.DynamoDBEventRecord, _ error) {
					failures = append(failures, pks(records))
				}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			returned := make(chan error, 1)
			go func() {
				returned <- streams.Run(ctx, ddbtest.StreamsClient(t), client, table, opts, func(ctx context.Context, ev events.DynamoDBEvent) error {
					select {
					case invoked <- struct{}{}:
					default:
					}
					return c.handler(ctx, ev)
				})
			}()
			select {
			case <-invoked:
			case <-time.After(waitFor):
				t.Fatalf("no invocation after %v", waitFor)
			}
			cancel()
			select {
			case err := <-returned:
				if err != nil {
					t.Errorf("Run: %v, want nil once its ctx ended", err)
				}
			case <-time.After(waitFor):
				t.Fatalf("Run still running %v after its ctx ended", waitFor)
			}
			if failures != nil {
				t.Errorf("on failure %q: a batch abandoned as Run stops is no failure", failures)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	noStream := "nostream_" + strings.ReplaceAll(t.Name(), "/", "_")
	def := *tpl.Table
	def.StreamViewType = ""
	if err := samtemplate.Create(t.Context(), client, &def, noStream, samtemplate.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(noStream)})
	})
	valid := streams.Options{BatchSize: 1, PollInterval: pollInterval}
	with := func(change func(*streams.Options)) streams.Options {
		o := valid
		change(&o)
		return o
	}
	for _, c := range []struct {
		name  string
		table string
		opts  streams.Options
		want  string
	}{
		{"a table without a stream", noStream, valid, "has no stream"},
		{"no such table", "missing", valid, "describing table missing"},
		{"no batch size", table, with(func(o *streams.Options) { o.BatchSize = 0 }), "BatchSize 0"},
		{"no poll interval", table, with(func(o *streams.Options) { o.PollInterval = 0 }), "PollInterval 0s"},
		{"retries below -1", table, with(func(o *streams.Options) { o.MaxRetries = -2 }), "MaxRetries -2"},
		{"a negative window", table, with(func(o *streams.Options) { o.BatchingWindow = -time.Second }), "BatchingWindow -1s"},
		{"a filter it cannot read", table, with(func(o *streams.Options) { o.Filters = []string{`{"eventName": [{"anything-but": "REMOVE"}]}`} }), "only exact values"},
	} {
		err := streams.Run(t.Context(), ddbtest.StreamsClient(t), client, c.table, c.opts, func(context.Context, events.DynamoDBEvent) error { return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestRunRenewsAnExpiredIterator: an iterator that expired (after 15
// minutes in DynamoDB) is renewed after the last record read: nothing is
// lost, nothing delivered twice.
func TestRunRenewsAnExpiredIterator(t *testing.T) {
	t.Parallel()
	client, table := newTable(t, "KEY#0", "KEY#1", "KEY#2", "KEY#3")
	var reads atomic.Int32
	expiring := dynamodbstreams.New(ddbtest.StreamsClient(t).Options(), func(o *dynamodbstreams.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("expire", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*dynamodbstreams.GetRecordsInput); ok && reads.Add(1) == 2 {
					return middleware.InitializeOutput{}, middleware.Metadata{}, &types.ExpiredIteratorException{Message: aws.String("Iterator expired")}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
		})
	})
	j := newJournal()
	run(t, expiring, client, table, streams.Options{BatchSize: 2, PollInterval: pollInterval}, func(_ context.Context, ev events.DynamoDBEvent) error {
		j.add(pks(ev.Records))
		return nil
	})
	if got, want := j.await(t, 2), []string{"KEY#0 KEY#1", "KEY#2 KEY#3"}; !slices.Equal(got, want) {
		t.Errorf("batches %q, want %q", got, want)
	}
	if reads.Load() < 2 {
		t.Errorf("%d reads: the iterator never expired", reads.Load())
	}
}

// fakeStream serves a stream's shards from memory, through a Streams
// client's middleware, for what DynamoDB Local does not do at will: split
// shards. DescribeStream answers listings in turn, the last one from then on.
type fakeStream struct {
	mu       sync.Mutex
	listings [][]types.Shard
	records  map[string][]string // the partition keys of each shard's records
	log      []string            // the calls served, as "GetShardIterator <shard>" or "end of <shard>"
}

func (f *fakeStream) client() *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1"}, func(o *dynamodbstreams.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("fake", f.serve), middleware.Before)
		})
	})
}

// serve answers a call; an iterator is "<shard>/<index of its next record>",
// and every shard is closed: read to its end, it has no next iterator.
func (f *fakeStream) serve(_ context.Context, in middleware.InitializeInput, _ middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out any
	switch p := in.Parameters.(type) {
	case *dynamodbstreams.DescribeStreamInput:
		shards := f.listings[0]
		if len(f.listings) > 1 {
			f.listings = f.listings[1:]
		}
		out = &dynamodbstreams.DescribeStreamOutput{StreamDescription: &types.StreamDescription{Shards: shards}}
	case *dynamodbstreams.GetShardIteratorInput:
		f.log = append(f.log, "GetShardIterator "+aws.ToString(p.ShardId))
		out = &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(aws.ToString(p.ShardId) + "/0")}
	case *dynamodbstreams.GetRecordsInput:
		shard, at, _ := strings.Cut(aws.ToString(p.ShardIterator), "/")
		from, _ := strconv.Atoi(at)
		to := min(from+int(aws.ToInt32(p.Limit)), len(f.records[shard]))
		res := &dynamodbstreams.GetRecordsOutput{}
		for i, pk := range f.records[shard][from:to] {
			res.Records = append(res.Records, types.Record{EventName: types.OperationTypeInsert, Dynamodb: &types.StreamRecord{
				Keys: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}, SequenceNumber: aws.String(strconv.Itoa(from + i + 1)),
			}})
		}
		if to < len(f.records[shard]) {
			res.NextShardIterator = aws.String(fmt.Sprint(shard, "/", to))
		} else {
			f.log = append(f.log, "end of "+shard)
		}
		out = res
	default:
		return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("fake stream: %T", p)
	}
	return middleware.InitializeOutput{Result: out}, middleware.Metadata{}, nil
}

// TestRunReadsShardsAsTheyComeParentsFirst: a child shard, listed before
// its parent, is read once its parent is read to its end; a shard whose
// parent was trimmed at once; a shard that appears later is read too.
func TestRunReadsShardsAsTheyComeParentsFirst(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	shard := func(id, parent string) types.Shard {
		s := types.Shard{ShardId: aws.String(id)}
		if parent != "" {
			s.ParentShardId = aws.String(parent)
		}
		return s
	}
	child, parent, orphan, later := shard("child", "parent"), shard("parent", ""), shard("orphan", "trimmed"), shard("later", "")
	f := &fakeStream{
		listings: [][]types.Shard{{child, parent, orphan}, {child, parent, orphan, later}},
		records:  map[string][]string{"parent": {"p0", "p1", "p2"}, "child": {"c0"}, "orphan": {"o0"}, "later": {"l0"}},
	}
	j := newJournal()
	var failedOnce atomic.Bool // shards are read, and invoke, concurrently
	run(t, f.client(), client, table, streams.Options{BatchSize: 2, MaxRetries: -1, PollInterval: pollInterval}, func(_ context.Context, ev events.DynamoDBEvent) error {
		batch := pks(ev.Records)
		// The parent's first batch fails once: a child read too early
		// would come first.
		if batch == "p0 p1" && failedOnce.CompareAndSwap(false, true) {
			return errors.New("failed")
		}
		j.add(batch)
		return nil
	})
	got := j.await(t, 5)
	for _, want := range []string{"p0 p1", "p2", "c0", "o0", "l0"} {
		if !slices.Contains(got, want) {
			t.Errorf("batches %q: no %q", got, want)
		}
	}
	if i, k := slices.Index(got, "p2"), slices.Index(got, "c0"); i < 0 || k < i || slices.Index(got, "p0 p1") > i {
		t.Errorf("batches %q: want the parent's p0 p1, p2 before the child's c0", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, k := slices.Index(f.log, "end of parent"), slices.Index(f.log, "GetShardIterator child"); i < 0 || k < i {
		t.Errorf("calls %q: the child was read before its parent's end", f.log)
	}
}
