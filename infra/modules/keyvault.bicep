// Key Vault for the one secret the app has: the Power BI push URL, whose query string carries a key.
// RBAC authorization: the app reads it through a Key Vault reference with Key Vault Secrets User
// (modules/roles.bicep). The deployment writes the secret through Resource Manager, which needs no
// data-plane role.

param location string
param tags object
param name string

@secure()
@description('Power BI push URL; empty creates no secret.')
param powerBiPushUrl string

var secretName = 'powerbi-push-url'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource pushUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(powerBiPushUrl)) {
  parent: vault
  name: secretName
  properties: {
    value: powerBiPushUrl
    contentType: 'text/uri-list'
  }
}

output name string = vault.name
// Versionless, so the app picks up a rotated secret (within 24 hours, or at once on any config change).
output powerBiSecretUri string = '${vault.properties.vaultUri}secrets/${secretName}'
