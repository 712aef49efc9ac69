// Everything `azd up` provisions for the fraud-scoring function app, in one resource group.
//
// Not compiled by this repository's CI: the Bicep compiler cannot be installed there (its installers
// download a binary). tests/infra/test_templates.py checks these files with a small text parser instead:
// every app setting the code reads is set below, each binding connection has its role assignment, no
// keys reach app settings. Run `az bicep build --file infra/main.bicep` before relying on a change.
//
// Identity everywhere: the function app's system-assigned identity reaches Event Hubs, Cosmos DB,
// Storage, Key Vault and Application Insights through role assignments (modules/roles.bicep). The only
// secret is the Power BI push URL, which lives in Key Vault and reaches the app as a Key Vault reference.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; part of every resource name and the azd-env-name tag.')
param environmentName string

// Not every region offers Flex Consumption, and a wrong one fails only when the plan is created, after
// Cosmos DB has been provisioning for minutes. `az functionapp list-flexconsumption-locations` lists the
// regions that do; azd's location prompt is the type below (as in Azure-Samples/azure-functions-flex-consumption-samples).
@minLength(1)
@metadata({ azd: { type: 'location' } })
@description('Region for every resource; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
param location string

@description('Object id of whoever runs azd (azd fills AZURE_PRINCIPAL_ID). Gets the same data roles as the app, so tools/send_events.py and a local func start work against these resources. Empty: no roles for a person.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('Kind of principalId: User for a person, ServicePrincipal for a CI identity (main.parameters.json reads AZURE_PRINCIPAL_TYPE). ARM refuses an assignment whose type does not match the principal (UnmatchedPrincipalType).')
param principalType string = 'User'

// ---- Event Hubs ------------------------------------------------------------------------------

@description('Event hub the generator writes and the scorer reads (EVENT_HUB_NAME).')
param eventHubName string = 'transactions'

@description('Consumer group of the scorer (EVENT_HUB_CONSUMER_GROUP). Give every other reader (Fabric Eventstream, ad-hoc tools) a group of its own.')
param eventHubConsumerGroup string = 'scoring'

@description('Consumer group for a developer\'s local func start against these resources. Sharing the deployed scorer\'s group would make the two hosts steal partitions from each other and score events twice.')
param eventHubLocalConsumerGroup string = 'local'

// Azure, not this template, enforces the tier's limits: Standard takes 1-32 partitions and 1-20 throughput
// units (capacity); Premium takes processing units of 1, 2, 4, 8 or 16 and up to 100 partitions per hub.
// A value outside the tier's range fails the deployment of the namespace or hub (docs/deploy.md, sizing).
@minValue(1)
@maxValue(100)
@description('Partitions of the hub: the ceiling on scorer instances reading in parallel. Standard allows 1-32, Premium up to 100; fixed at creation on Standard. See docs/deploy.md, sizing.')
param eventHubPartitionCount int = 4

@allowed(['Standard', 'Premium'])
@description('Event Hubs tier. Standard: throughput units (1 TU = 1,000 events/s or 1 MB/s in). Premium: processing units, for the 100k events/s row of the sizing table.')
param eventHubSku string = 'Standard'

@minValue(1)
@maxValue(20)
@description('Throughput units (Standard, 1-20) or processing units (Premium: 1, 2, 4, 8 or 16).')
param eventHubCapacity int = 1

@minValue(0)
@maxValue(20)
@description('Standard only: auto-inflate ceiling in throughput units; 0 turns auto-inflate off.')
param eventHubMaxThroughputUnits int = 4

// ---- Cosmos DB --------------------------------------------------------------------------------

@description('Database holding the seven containers (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'fraud'

@description('Scored documents, partitioned by /account_id (COSMOS_SCORED_CONTAINER).')
param cosmosScoredContainerName string = 'scored'

@description('Rejected events, partitioned by /id (COSMOS_REJECTED_CONTAINER).')
param cosmosRejectedContainerName string = 'rejected'

@description('Labelled, unscored history for retraining, partitioned by /account_id (COSMOS_HISTORY_CONTAINER).')
param cosmosHistoryContainerName string = 'history'

@description('Per-account behaviour state, one document per account, partitioned by /account_id (COSMOS_PROFILES_CONTAINER).')
param cosmosProfilesContainerName string = 'profiles'

@description('Confirmed outcomes posted to /api/labels, one per transaction, partitioned by /id (COSMOS_LABELS_CONTAINER).')
param cosmosLabelsContainerName string = 'labels'

@description('Merchant risk states and the label aggregation\'s progress, partitioned by /id (COSMOS_MERCHANTS_CONTAINER).')
param cosmosMerchantsContainerName string = 'merchants'

@description('Change-feed leases of PublishToPowerBI, partitioned by /id (COSMOS_LEASE_CONTAINER).')
param cosmosLeaseContainerName string = 'leases'

@minValue(1000)
@description('Autoscale ceiling of the scored container in RU/s; it idles at a tenth of this. About 8 RU per scored document with the indexing policy in modules/cosmos.bicep.')
param cosmosScoredMaxThroughput int = 4000

@minValue(1000)
@description('Autoscale ceiling of the profiles container in RU/s. Per account in a batch: one read (about 1-2 RU) and one write (about 5-7 RU, nothing indexed); see docs/deploy.md, sizing.')
param cosmosProfilesMaxThroughput int = 4000

@description('Turn off key (local) authentication on the account: the app uses its identity only. Set false only for a tool that cannot sign in with Entra ID.')
param cosmosDisableLocalAuth bool = true

// ---- Function app -----------------------------------------------------------------------------

@allowed([2048, 4096])
@description('Memory per Flex Consumption instance.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out ceiling across the app.')
param maximumInstanceCount int = 100

// ---- Settings the Python code reads (shared/settings.py); app settings are strings ------------

@description('GENERATE_MAX_COUNT: upper bound for count on POST /api/transactions.')
param generateMaxCount string = '1000'

@description('GENERATOR_FRAUD_RATE: share of generated transactions that are fraud.')
param generatorFraudRate string = '0.10'

@description('GENERATOR_SEED: empty for fresh randomness per process.')
param generatorSeed string = ''

@description('GENERATOR_SCHEDULE: NCRONTAB of the timer generator. Hourly by default: the timer fires even when GENERATOR_TIMER_COUNT is 0, and every firing can start an instance.')
param generatorSchedule string = '0 0 * * * *'

@description('GENERATOR_TIMER_COUNT: events per timer tick; 0 keeps the timer generator off.')
param generatorTimerCount string = '0'

@description('GENERATOR_RECORDS_PER_EVENT: transactions per Event Hubs event from the generators; 1 sends bare transactions, more sends envelopes.')
param generatorRecordsPerEvent string = '1'

@description('MAX_EVENT_BYTES: largest event body the scorer accepts; the default is the Event Hubs limit.')
param maxEventBytes string = '1048576'

@description('MAX_RECORDS_PER_ENVELOPE: most records one envelope may hold before it is rejected whole.')
param maxRecordsPerEnvelope string = '5000'

@description('MAX_TRANSACTIONS_PER_INVOCATION: past this many transactions in one invocation, events are rejected whole (invocation_limit) to bound memory.')
param maxTransactionsPerInvocation string = '50000'

@description('EVENT_TIME_MAX_LATE_HOURS: an event dated more than this before its enqueued time is rejected (too_late).')
param eventTimeMaxLateHours string = '720'

@description('EVENT_TIME_MAX_EARLY_HOURS: an event dated more than this after its enqueued time is rejected (too_early).')
param eventTimeMaxEarlyHours string = '8784'

@allowed(['off', 'on'])
@description('SCORE_API_REASON_FIGURES: on lets POST /api/score reasons quote an account\'s stored figures; off keeps them out.')
param scoreApiReasonFigures string = 'off'

@allowed(['sdk', 'binding'])
@description('GENERATOR_SENDER: sdk sends each account\'s generated transactions to one partition (azure-eventhub); binding uses the output binding, which spreads them over all partitions.')
param generatorSender string = 'sdk'

@allowed(['fast', 'library'])
@description('ENQUEUED_TIME_PARSER: fast parses enqueued times with the app\'s own parser; library uses azure-functions\' own.')
param enqueuedTimeParser string = 'fast'

// `memory` (shared/settings.py) is left out: Flex Consumption adds and removes instances and moves
// partitions between them, and a state kept in one process would be lost or split on every move.
@allowed(['cosmos', 'off'])
@description('BEHAVIOUR_STATE: cosmos keeps each account\'s recent payments in the profiles container; off scores every payment with history unknown.')
param behaviourState string = 'cosmos'

// `memory` left out for the same reason as BEHAVIOUR_STATE: labels and merchant states must outlive instances.
@allowed(['cosmos', 'off'])
@description('LABEL_STORE: cosmos keeps labels posted to /api/labels in the labels container; off answers 503.')
param labelStore string = 'cosmos'

@allowed(['cosmos', 'off'])
@description('MERCHANT_STATE: cosmos keeps merchant risk states in the merchants container; off scores every merchant as unlabelled.')
param merchantState string = 'cosmos'

@description('MERCHANT_RISK_DELAY_DAYS: whole days between a label becoming known and its use in merchant features (0-60).')
param merchantRiskDelayDays string = '7'

@description('LABEL_AGGREGATION_SCHEDULE: NCRONTAB (UTC) of the label aggregation; hourly, five minutes past, so a day is applied minutes after it ends.')
param labelAggregationSchedule string = '0 5 * * * *'

@description('MODEL_DIR: empty uses the artifact deployed with the app.')
param modelDir string = ''

@description('FRAUD_THRESHOLD: empty uses the threshold stored with the model.')
param fraudThreshold string = ''

@description('POWERBI_TIMEOUT_SECONDS: per-request timeout for Power BI.')
param powerBiTimeoutSeconds string = '10'

@description('POWERBI_PUBLISH: all rows, or only flagged ones (a push dataset takes at most ~278 rows/s; see docs/deploy.md).')
@allowed(['all', 'flagged'])
param powerBiPublish string = 'all'

@secure()
@description('Power BI push URL (it embeds a key). Stored in Key Vault, never in app settings; empty leaves publishing off.')
param powerBiPushUrl string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
// azure.yaml's service name; azd finds the app to deploy to by this tag.
var serviceName = 'scoring'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainerName: 'app-package'
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: rg
  params: {
    location: location
    tags: tags
    namespaceName: 'evhns-${resourceToken}'
    hubName: eventHubName
    consumerGroupName: eventHubConsumerGroup
    localConsumerGroupName: eventHubLocalConsumerGroup
    partitionCount: eventHubPartitionCount
    sku: eventHubSku
    capacity: eventHubCapacity
    maxThroughputUnits: eventHubMaxThroughputUnits
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    location: location
    tags: tags
    accountName: 'cosmos-${resourceToken}'
    databaseName: cosmosDatabaseName
    scoredContainerName: cosmosScoredContainerName
    rejectedContainerName: cosmosRejectedContainerName
    historyContainerName: cosmosHistoryContainerName
    profilesContainerName: cosmosProfilesContainerName
    labelsContainerName: cosmosLabelsContainerName
    merchantsContainerName: cosmosMerchantsContainerName
    leaseContainerName: cosmosLeaseContainerName
    scoredMaxThroughput: cosmosScoredMaxThroughput
    profilesMaxThroughput: cosmosProfilesMaxThroughput
    disableLocalAuth: cosmosDisableLocalAuth
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    powerBiPushUrl: powerBiPushUrl
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    serviceName: serviceName
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${storage.outputs.deploymentContainerName}'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Data roles of the app's identity, one per connection it makes (see modules/roles.bicep).
module appRoles 'modules/roles.bicep' = {
  name: 'app-roles'
  scope: rg
  params: {
    principalId: functionApp.outputs.principalId
    principalType: 'ServicePrincipal'
    storageAccountName: storage.outputs.name
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.hubName
    cosmosAccountName: cosmos.outputs.accountName
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// The same data roles for the person running azd, so the sender and local runs need no keys either.
// After appRoles, not beside it: both write a Cosmos DB sqlRoleAssignment on one account, and two at once
// can fail with "There is another user operation in progress which requires an exclusive lock" (seen in
// hashicorp/terraform-provider-azurerm#15842); serialising costs seconds.
module developerRoles 'modules/roles.bicep' = if (!empty(principalId)) {
  name: 'developer-roles'
  scope: rg
  dependsOn: [appRoles]
  params: {
    principalId: principalId
    principalType: principalType
    storageAccountName: storage.outputs.name
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.hubName
    cosmosAccountName: cosmos.outputs.accountName
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// Identity-based connection forms only: `<Connection>__fullyQualifiedNamespace`, `__accountEndpoint`,
// `AzureWebJobsStorage__accountName` (https://learn.microsoft.com/azure/azure-functions/functions-reference#configure-an-identity-based-connection).
// No FUNCTIONS_WORKER_RUNTIME: Flex Consumption takes the runtime from functionAppConfig.runtime.
// POWERBI_PUSH_URL is a Key Vault reference, versionless so a rotated secret is picked up
// (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#rotation).
var appSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  // With host.json "telemetryMode": "OpenTelemetry": the worker tells the host it exports its own logs
  // (so each log line reaches Application Insights once, not twice) and extracts the invocation's trace
  // context. shared/telemetry.py configures the Azure Monitor distro itself, so
  // PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY, which makes the worker configure it a second time, stays unset.
  // https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
  EventHubConnection__fullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
  EVENT_HUB_NAME: eventHubs.outputs.hubName
  EVENT_HUB_CONSUMER_GROUP: eventHubs.outputs.consumerGroupName
  CosmosDBConnection__accountEndpoint: cosmos.outputs.endpoint
  COSMOS_DATABASE: cosmos.outputs.databaseName
  COSMOS_SCORED_CONTAINER: cosmos.outputs.scoredContainerName
  COSMOS_REJECTED_CONTAINER: cosmos.outputs.rejectedContainerName
  COSMOS_HISTORY_CONTAINER: cosmos.outputs.historyContainerName
  // Read by the scorer with the Cosmos DB SDK (shared/behaviour/store.py) through the same identity endpoint
  // as the bindings, and written by its `profiles` output binding.
  COSMOS_PROFILES_CONTAINER: cosmos.outputs.profilesContainerName
  BEHAVIOUR_STATE: behaviourState
  // Created and read with the SDK (shared/labels/store.py, shared/behaviour/merchant_store.py) through the
  // same identity endpoint; the aggregation timer (AggregateLabels) turns labels into merchant states.
  COSMOS_LABELS_CONTAINER: cosmos.outputs.labelsContainerName
  COSMOS_MERCHANTS_CONTAINER: cosmos.outputs.merchantsContainerName
  LABEL_STORE: labelStore
  MERCHANT_STATE: merchantState
  MERCHANT_RISK_DELAY_DAYS: merchantRiskDelayDays
  LABEL_AGGREGATION_SCHEDULE: labelAggregationSchedule
  COSMOS_LEASE_CONTAINER: cosmos.outputs.leaseContainerName
  GENERATE_MAX_COUNT: generateMaxCount
  GENERATOR_FRAUD_RATE: generatorFraudRate
  GENERATOR_SEED: generatorSeed
  GENERATOR_SCHEDULE: generatorSchedule
  GENERATOR_TIMER_COUNT: generatorTimerCount
  GENERATOR_RECORDS_PER_EVENT: generatorRecordsPerEvent
  // The generators group accounts by partition as Event Hubs would; they must know the hub's real count.
  EVENT_HUB_PARTITION_COUNT: string(eventHubPartitionCount)
  MAX_EVENT_BYTES: maxEventBytes
  MAX_RECORDS_PER_ENVELOPE: maxRecordsPerEnvelope
  ENQUEUED_TIME_PARSER: enqueuedTimeParser
  GENERATOR_SENDER: generatorSender
  MAX_TRANSACTIONS_PER_INVOCATION: maxTransactionsPerInvocation
  EVENT_TIME_MAX_LATE_HOURS: eventTimeMaxLateHours
  EVENT_TIME_MAX_EARLY_HOURS: eventTimeMaxEarlyHours
  SCORE_API_REASON_FIGURES: scoreApiReasonFigures
  MODEL_DIR: modelDir
  FRAUD_THRESHOLD: fraudThreshold
  POWERBI_PUSH_URL: empty(powerBiPushUrl) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.powerBiSecretUri})'
  POWERBI_TIMEOUT_SECONDS: powerBiTimeoutSeconds
  POWERBI_PUBLISH: powerBiPublish
}

// Applied after the role assignments, so the identity connections and the Key Vault reference
// resolve on the first start instead of after the platform's next retry.
module settings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  scope: rg
  dependsOn: [appRoles]
  params: {
    appName: functionApp.outputs.name
    settings: appSettings
  }
}

// azd writes these into .azure/<env>/.env; docs/deploy.md uses them.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output EVENT_HUB_FULLY_QUALIFIED_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output EVENT_HUB_NAME string = eventHubs.outputs.hubName
output EVENT_HUB_LOCAL_CONSUMER_GROUP string = eventHubs.outputs.localConsumerGroupName
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output KEY_VAULT_NAME string = keyVault.outputs.name
