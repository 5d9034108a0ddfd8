// Package streams runs a stream function on a DynamoDB table's stream as
// Lambda's event source mapping does, for DynamoDB Local, which serves the
// Streams API but runs no functions: `make run` and the tests invoke the
// same handler in-process, with the batching, retries, bisection, filters
// and on-failure destination that template.yaml gives the mapping.
//
// What Lambda does is modelled so (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html):
// each shard is read from its start, one batch in flight at a time, its
// records in order, a child shard after its parent. A batch is at most
// BatchSize records that match a filter, gathered for at most
// BatchingWindow from its first. A failing batch is, with Bisect, split in
// two halves delivered in turn (a split is no retry); else retried, after
// PollInterval, up to MaxRetries times, and then handed to OnFailure, and
// the shard moves on. Unlike Lambda, a restarted Run reads each shard from
// its start again: it keeps no checkpoint.
package streams

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/keygate/keygate/pkg/wait"
)

// Handler is a stream function, as lambda.Start gets it.
type Handler func(ctx context.Context, ev events.DynamoDBEvent) error

// Options are an event source mapping's settings; OptionsFromTemplate
// reads them from template.yaml.
type Options struct {
	// BatchSize is the most records an invocation gets.
	BatchSize int
	// BatchingWindow is how long records are gathered, from the first,
	// before invoking with a batch that is not full.
	BatchingWindow time.Duration
	// MaxRetries is how often a failing batch is retried before it goes
	// to OnFailure; -1 retries until it succeeds.
	MaxRetries int
	// Bisect splits a failing batch of several records in two and
	// delivers each half as a batch.
	Bisect bool
	// Filters are FilterCriteria patterns (JSON): a record that matches
	// none of them is dropped without an invocation. None drops nothing.
	Filters []string
	// Timeout is the function's: an invocation's context ends after it,
	// and one that runs past it has failed. 0 for none.
	Timeout time.Duration
	// PollInterval is how often a shard with nothing new is read again,
	// and how long a failed batch waits before its retry.
	PollInterval time.Duration
	// OnFailure is the on-failure destination: it gets a batch that failed
	// its last retry, with the last error. nil drops the batch. (Lambda
	// sends the destination the batch's shard and sequence numbers, not
	// its records.)
	OnFailure func(ctx context.Context, records []events.DynamoDBEventRecord, err error)
}

// maxGetRecords is the most records one GetRecords call returns.
const maxGetRecords = 1000

func (o Options) validate() error {
	switch {
	case o.BatchSize < 1:
		return fmt.Errorf("BatchSize %d: want at least 1", o.BatchSize)
	case o.BatchingWindow < 0 || o.Timeout < 0:
		return fmt.Errorf("BatchingWindow %v, Timeout %v: want no negative duration", o.BatchingWindow, o.Timeout)
	case o.MaxRetries < -1:
		return fmt.Errorf("MaxRetries %d: want -1 (forever) or more", o.MaxRetries)
	case o.PollInterval <= 0:
		return fmt.Errorf("PollInterval %v: want a positive duration", o.PollInterval)
	}
	return nil
}

// NewClient is a Streams API client that reaches table streams as dynamo
// reaches tables: its region, credentials, HTTP client and retries, and its
// endpoint, where DynamoDB Local serves the Streams API too.
func NewClient(dynamo *dynamodb.Client) *dynamodbstreams.Client {
	o := dynamo.Options()
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region: o.Region, Credentials: o.Credentials, BaseEndpoint: o.BaseEndpoint,
		HTTPClient: o.HTTPClient, Retryer: o.Retryer,
	})
}

// Run reads the stream of table from its start (TRIM_HORIZON) and invokes
// h with batches, in order per shard, until ctx ends; a batch is retried
// (bisected when Bisect) while it fails, and after MaxRetries goes to
// OnFailure, then the shard moves on, so a poison record never blocks the
// stream. Shards are read concurrently, so h must be safe for concurrent
// use, as a function with several shards runs in several Lambda
// environments. Run returns nil when ctx ends, and any other error at once.
func Run(ctx context.Context, client *dynamodbstreams.Client, dynamo *dynamodb.Client, table string, opts Options, h Handler) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	patterns, err := parsePatterns(opts.Filters)
	if err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	out, err := dynamo.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return stopped(ctx, fmt.Errorf("streams: describing table %s: %w", table, err))
	}
	if spec := out.Table.StreamSpecification; spec == nil || !aws.ToBool(spec.StreamEnabled) {
		return fmt.Errorf("streams: table %s has no stream", table)
	}
	arn := aws.ToString(out.Table.LatestStreamArn)

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var readers sync.WaitGroup
	done := map[string]chan struct{}{} // by shard id, closed once its reader ends
	for {
		shards, err := listShards(runCtx, client, arn)
		if err != nil {
			stop(err)
			break
		}
		var found []types.Shard
		for _, s := range shards {
			if _, ok := done[aws.ToString(s.ShardId)]; !ok {
				done[aws.ToString(s.ShardId)] = make(chan struct{})
				found = append(found, s)
			}
		}
		for _, s := range found {
			// A parent the stream no longer lists was trimmed: nothing to wait for.
			parent, ended := done[aws.ToString(s.ParentShardId)], done[aws.ToString(s.ShardId)]
			r := &shardReader{client: client, streamARN: arn, shardID: aws.ToString(s.ShardId), opts: opts, patterns: patterns, handler: h}
			readers.Go(func() {
				defer close(ended)
				if parent != nil {
					select {
					case <-parent:
					case <-runCtx.Done():
						return
					}
				}
				if err := r.run(runCtx); err != nil {
					stop(fmt.Errorf("streams: shard %s: %w", r.shardID, err))
				}
			})
		}
		if wait.For(runCtx, opts.PollInterval) != nil {
			break
		}
	}
	readers.Wait()
	return stopped(ctx, context.Cause(runCtx))
}

// stopped is Run's answer to err: nil when ctx, Run's own, has ended.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// listShards lists every shard of the stream, page by page.
func listShards(ctx context.Context, client *dynamodbstreams.Client, arn string) ([]types.Shard, error) {
	var shards []types.Shard
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)}
	for {
		out, err := client.DescribeStream(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("streams: describing stream %s: %w", arn, err)
		}
		shards = append(shards, out.StreamDescription.Shards...)
		if out.StreamDescription.LastEvaluatedShardId == nil {
			return shards, nil
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
}
