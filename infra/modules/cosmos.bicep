// Cosmos DB for NoSQL: the `fraud` database with the scored, rejected, history, profiles, labels,
// merchants and leases containers. Identity-based connections cannot create containers (the Cosmos DB trigger runs with
// createLeaseContainerIfNotExists=false), so all of them are created here.
// Types: https://learn.microsoft.com/azure/templates/microsoft.documentdb/2024-11-15/databaseaccounts
//
// Indexing is limited to the fields something queries. Every write updates the index of every
// included path, so an all-paths policy makes each ~1 KB scored document cost about 19 RU to write
// against about 8 RU with the policy below (planning figures; measure x-ms-request-charge on yours:
// https://learn.microsoft.com/azure/cosmos-db/optimize-cost-reads-writes). The scorer writes with the
// output binding (id + partition key, no query) and PublishToPowerBI reads the change feed; neither
// needs an index. The included paths serve the history report and ad-hoc investigation
// (powerbi/report-layout.md): time ranges on scored_at, flagged-only filters, risk ordering,
// comparisons across model versions, per-account lookups. A filter on an excluded path still
// works but scans; add a path here (an online index transformation) when a new query needs it.

param location string
param tags object
param accountName string
param databaseName string
param scoredContainerName string
param rejectedContainerName string
param historyContainerName string
param profilesContainerName string
param labelsContainerName string
param merchantsContainerName string
param leaseContainerName string

@minValue(1000)
param scoredMaxThroughput int

@minValue(1000)
param profilesMaxThroughput int

param disableLocalAuth bool

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: accountName
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    disableLocalAuth: disableLocalAuth
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

// Partition key /account_id: writes spread over ~50,000 accounts (no hot partition at any rate in
// the sizing table), and "this account's history" stays a single-partition query.
resource scored 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: scoredContainerName
  properties: {
    resource: {
      id: scoredContainerName
      partitionKey: {
        paths: ['/account_id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          { path: '/account_id/?' }
          { path: '/scored_at/?' }
          { path: '/is_flagged/?' }
          { path: '/fraud_probability/?' }
          { path: '/model_version/?' }
        ]
        excludedPaths: [
          { path: '/*' }
          { path: '/"_etag"/?' }
        ]
        // "Latest flagged transactions" without a cross-path sort in memory.
        compositeIndexes: [
          [
            { path: '/is_flagged', order: 'ascending' }
            { path: '/scored_at', order: 'descending' }
          ]
        ]
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: scoredMaxThroughput
      }
    }
  }
}

// Partition key /id: a rejected event may lack a valid account_id, and the document id is a hash
// of partition and sequence number, so writes spread evenly and a redelivery overwrites in place.
resource rejected 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: rejectedContainerName
  properties: {
    resource: {
      id: rejectedContainerName
      partitionKey: {
        paths: ['/id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          { path: '/rejected_at/?' }
          { path: '/reason/?' }
        ]
        excludedPaths: [
          { path: '/*' }
          { path: '/"_etag"/?' }
        ]
      }
      // Rejections are for investigation, not a system of record: keep 30 days.
      defaultTtl: 2592000
    }
    options: {
      autoscaleSettings: {
        maxThroughput: 1000
      }
    }
  }
}

// Labelled, unscored history (the generator's history mode) that `model/training/` retrains from.
// Partition key /account_id like `scored`; nothing is queried but a full read, so index nothing.
resource history 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: historyContainerName
  properties: {
    resource: {
      id: historyContainerName
      partitionKey: {
        paths: ['/account_id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: []
        excludedPaths: [
          { path: '/*' }
        ]
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: 1000
      }
    }
  }
}

// Per-account behaviour state (shared/behaviour/store.py): one document per account, id = partition key =
// account_id, written by ScoreTransactions' `profiles` output binding (an upsert by id) and read with
// the SDK's `read_items` before each batch. Nothing filters on a document field, so no path is indexed.
// Not indexingMode 'none': with several of a batch's accounts on one physical partition, the Python
// SDK's read_items sends one query (`c.id = @id AND c.account_id = @pk OR ...`) instead of point reads,
// and a query needs the index on id, which 'consistent' keeps whatever the paths ('id' and '_ts' are
// always indexed in consistent mode: https://learn.microsoft.com/azure/cosmos-db/how-to-manage-indexing-policy;
// 'none' is for containers read by id only and drops every index:
// https://learn.microsoft.com/azure/cosmos-db/index-policy#indexing-mode). Excluding every path keeps
// a write near the bare document cost, about 5-7 RU for the 1-3.5 KB states (docs/deploy.md, sizing;
// https://learn.microsoft.com/azure/cosmos-db/understand-request-unit-consumption).
resource profiles 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: profilesContainerName
  properties: {
    resource: {
      id: profilesContainerName
      partitionKey: {
        paths: ['/account_id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: []
        excludedPaths: [
          { path: '/*' }
        ]
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: profilesMaxThroughput
      }
    }
  }
}

// Confirmed outcomes (shared/labels/store.py): one document per labelled transaction, id = partition key =
// transaction_id, created (never replaced) with the SDK by RecordLabels, so a label is final. The
// aggregation (AggregateLabels) reads one known day at a time with a cross-partition query on
// `known_day`, the one indexed path: about 5 RU per ~400-byte label written with one path indexed
// (https://learn.microsoft.com/azure/cosmos-db/understand-request-unit-consumption: 4.95 RU for a 1 KB
// write). No TTL: a label is the record of an outcome, and training reads them back.
resource labels 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: labelsContainerName
  properties: {
    resource: {
      id: labelsContainerName
      partitionKey: {
        paths: ['/id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          { path: '/known_day/?' }
        ]
        excludedPaths: [
          { path: '/*' }
          { path: '/"_etag"/?' }
        ]
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: 1000
      }
    }
  }
}

// Merchant risk states (shared/behaviour/merchant_store.py): one document per merchant (id
// `merchant:<merchant_id>` = partition key) and the aggregation's progress (id `_aggregation`), read
// by id (`read_items`, point reads) and written conditionally (If-Match) with the SDK. Nothing filters
// on a field, so no path is indexed; 'consistent', not 'none', for the same reason as `profiles`.
resource merchants 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: merchantsContainerName
  properties: {
    resource: {
      id: merchantsContainerName
      partitionKey: {
        paths: ['/id']
        kind: 'Hash'
        version: 2
      }
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: []
        excludedPaths: [
          { path: '/*' }
        ]
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: 1000
      }
    }
  }
}

// Partition key /id is what the Cosmos DB trigger requires of a lease container. Default indexing:
// the change feed processor queries its few lease documents, and their writes are rare.
resource leases 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: leaseContainerName
  properties: {
    resource: {
      id: leaseContainerName
      partitionKey: {
        paths: ['/id']
        kind: 'Hash'
        version: 2
      }
    }
    options: {
      autoscaleSettings: {
        maxThroughput: 1000
      }
    }
  }
}

output accountName string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output scoredContainerName string = scored.name
output rejectedContainerName string = rejected.name
output historyContainerName string = history.name
output profilesContainerName string = profiles.name
output labelsContainerName string = labels.name
output merchantsContainerName string = merchants.name
output leaseContainerName string = leases.name
