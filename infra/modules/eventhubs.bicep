// Event Hubs namespace, the transactions hub, the scorer's consumer group and one for local runs.
// SAS (local) authentication is off: senders and the scorer use Entra identities with the
// Azure Event Hubs Data Sender / Data Receiver roles (modules/roles.bicep).
// Types: https://learn.microsoft.com/azure/templates/microsoft.eventhub/2024-01-01/namespaces

param location string
param tags object
param namespaceName string
param hubName string
param consumerGroupName string

@description('A second group for a developer\'s local func start, so it never competes with the deployed scorer for partitions.')
param localConsumerGroupName string

@description('Partitions: the ceiling on parallel scorer instances (one Event Hubs trigger instance per partition at most).')
param partitionCount int

@allowed(['Standard', 'Premium'])
param sku string

@description('Throughput units (Standard; 1 TU = 1,000 events/s or 1 MB/s ingress, 2 MB/s egress) or processing units (Premium).')
param capacity int

@description('Standard only: auto-inflate ceiling in TUs; 0 disables auto-inflate.')
param maxThroughputUnits int

var autoInflate = sku == 'Standard' && maxThroughputUnits > capacity

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    isAutoInflateEnabled: autoInflate
    maximumThroughputUnits: autoInflate ? maxThroughputUnits : 0
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: hubName
  properties: {
    partitionCount: partitionCount
    // One day is enough to replay after an outage of the scorer; raise it if you need longer.
    messageRetentionInDays: 1
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
}

resource localConsumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: localConsumerGroupName
}

output namespaceName string = namespace.name
// serviceBusEndpoint is https://<namespace>.servicebus.windows.net:443/; the identity-based
// connection wants the bare host name.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
output hubName string = hub.name
output consumerGroupName string = consumerGroup.name
output localConsumerGroupName string = localConsumerGroup.name
