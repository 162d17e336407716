package integration

import "testing"

// TestCompatConfluentKafkaPython: confluent-kafka-python (librdkafka) from Debian — AdminClient,
// idempotent Producer with every codec, Consumer with manual assignment.
func TestCompatConfluentKafkaPython(t *testing.T) {
	py := requirePythonModules(t, "SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON", "apt-get install python3-confluent-kafka", "confluent_kafka")
	n := startNode(t, "", groupNodeArgs...)
	res := pythonDriver(t, py, "confluent_driver.py", n, allCodecs...)
	logVersion(t, "confluent-kafka-python", res.Version)
	checkCompat(t, n, res, allCodecs, "AdminClient.create_topics")

	seedGroupTopic(t, n)
	checkGroup(t, n, "compat-confluent-kafka-python", pythonGroupDriver(t, py, "confluent_driver.py", n, "compat-confluent-kafka-python"))

	clusterCell(t, func(t *testing.T, n *node) {
		res := pythonDriver(t, py, "confluent_driver.py", n, "none")
		checkCompat(t, n, res, []string{"none"}, "AdminClient.create_topics")
		checkSpread(t, n, compatTopic("none"))
		seedGroupTopic(t, n)
		checkGroup(t, n, "compat-confluent-kafka-python", pythonGroupDriver(t, py, "confluent_driver.py", n, "compat-confluent-kafka-python"))
	})

	replayCell(t, pythonReplayClient(t, "confluent-kafka-python", py, "confluent_driver.py"))

	pythonTimeDriver(t, py, "confluent_driver.py", n, seedTimeTopic(t, n))
}
