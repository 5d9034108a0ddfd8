package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/keygate/keygate/pkg/wait"
)

// shardReader reads one shard and delivers its batches, one at a time.
type shardReader struct {
	client    *dynamodbstreams.Client
	streamARN string
	shardID   string
	opts      Options
	patterns  []pattern
	handler   Handler

	// iterator is where the next read starts; nil once a closed shard
	// has been read to its end.
	iterator *string
	// last is the sequence number of the last record read, where an
	// expired iterator is renewed; "" before the first.
	last string
}

func (r *shardReader) run(ctx context.Context) error {
	if err := r.seek(ctx); err != nil {
		return err
	}
	for r.iterator != nil {
		batch, err := r.gather(ctx)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if len(batch) > 0 {
			r.deliver(ctx, batch)
		}
	}
	return nil
}

// seek gets an iterator at the shard's start, or after the last record read.
func (r *shardReader) seek(ctx context.Context) error {
	in := &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(r.streamARN), ShardId: aws.String(r.shardID),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	}
	if r.last != "" {
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(r.last)
	}
	out, err := r.client.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("getting an iterator: %w", err)
	}
	r.iterator = out.ShardIterator
	return nil
}

// gather reads records until the batch is full, BatchingWindow has passed
// since its first record, or the shard is closed and read to its end. An
// ended ctx returns what was gathered.
func (r *shardReader) gather(ctx context.Context) ([]events.DynamoDBEventRecord, error) {
	var batch []events.DynamoDBEventRecord
	var deadline time.Time
	for r.iterator != nil && len(batch) < r.opts.BatchSize {
		read, admitted, err := r.read(ctx, r.opts.BatchSize-len(batch))
		if err != nil {
			return nil, err
		}
		batch = append(batch, admitted...)
		if len(batch) > 0 && deadline.IsZero() {
			deadline = time.Now().Add(r.opts.BatchingWindow)
		}
		if len(batch) > 0 && !time.Now().Before(deadline) {
			break
		}
		if read > 0 { // perhaps more behind them
			continue
		}
		pause := r.opts.PollInterval
		if len(batch) > 0 {
			pause = min(pause, time.Until(deadline))
		}
		if wait.For(ctx, pause) != nil {
			break
		}
	}
	return batch, nil
}

// read reads at most limit records and returns how many it read, and those
// that pass the filters, converted.
func (r *shardReader) read(ctx context.Context, limit int) (int, []events.DynamoDBEventRecord, error) {
	out, err := r.client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{
		ShardIterator: r.iterator, Limit: aws.Int32(int32(min(limit, maxGetRecords))),
	})
	var expired *types.ExpiredIteratorException
	switch {
	case errors.As(err, &expired):
		// An iterator lasts 15 minutes: a batch retried for long, or a
		// machine asleep, outlives it.
		return 0, nil, r.seek(ctx)
	case ctx.Err() != nil:
		return 0, nil, nil
	case err != nil:
		return 0, nil, fmt.Errorf("reading records: %w", err)
	}
	r.iterator = out.NextShardIterator
	var admitted []events.DynamoDBEventRecord
	for _, rec := range out.Records {
		ev, err := eventRecord(rec, r.streamARN)
		if err != nil {
			return 0, nil, err
		}
		r.last = ev.Change.SequenceNumber
		ok, err := admits(r.patterns, ev)
		if err != nil {
			return 0, nil, err
		}
		if ok {
			admitted = append(admitted, ev)
		}
	}
	return len(out.Records), admitted, nil
}

// deliver invokes the handler with batch until it succeeds, bisecting or
// retrying as the options say, and hands a batch out of retries to
// OnFailure. An ended ctx abandons the batch.
func (r *shardReader) deliver(ctx context.Context, batch []events.DynamoDBEventRecord) {
	for retries := 0; ; retries++ {
		err := r.invoke(ctx, batch)
		switch {
		case err == nil, ctx.Err() != nil:
			return
		case r.opts.Bisect && len(batch) > 1:
			half := len(batch) / 2
			r.deliver(ctx, batch[:half])
			r.deliver(ctx, batch[half:])
			return
		case r.opts.MaxRetries >= 0 && retries >= r.opts.MaxRetries:
			if r.opts.OnFailure != nil {
				r.opts.OnFailure(ctx, batch, err)
			}
			return
		}
		if wait.For(ctx, r.opts.PollInterval) != nil {
			return
		}
	}
}

// invoke runs the handler as Lambda would: past its timeout, or
// panicking, it has failed.
func (r *shardReader) invoke(ctx context.Context, batch []events.DynamoDBEventRecord) (err error) {
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	// The handler gets a slice of its own: it may not change a batch that is retried.
	err = r.handler(ctx, events.DynamoDBEvent{Records: append([]events.DynamoDBEventRecord(nil), batch...)})
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("timed out: %w", ctx.Err())
	}
	return err
}
