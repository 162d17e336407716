// Package segment is Sediment's durable partition log on local disk: Kafka
// RecordBatch v2 bytes in segment files with sparse offset and time indexes,
// crash recovery, leader-epoch checkpoints and flush policies. It imports none of
// Sediment's other packages and no Kafka library. (Full format description below
// is being written; see the issue.)
package segment
