"""The sandbox's GraphQL schema: the subset of Numerai's API that model uploads use.

Field and type names follow a live introspection of api-tournament.numer.ai (docs/design/numerai.md §5).
One deliberate difference: numerapi declares ``$modelId``, ``$dataVersionId`` and
``$dockerImageId`` as ``String`` in its upload documents while the introspected schema says ``ID``;
graphql-core (rightly) rejects a ``String`` variable in an ``ID`` position, so the arguments those
two documents touch are ``String`` here. The live server accepts numerapi's documents, so this
is the shape clients actually exercise.
"""

from __future__ import annotations

SDL = """
scalar Time

type Query {
  account: Account
  apiTokenInfo: ApiTokenInfo
  model(modelId: ID): Model
  computePickleUploadAuth(filename: String = "model.pkl", modelId: String): FileUploadAuth
  computePickles(id: ID, modelId: ID, unassigned: Boolean! = false): [ComputePickleUpload]
  computePickleDataVersions(deprecated: Boolean! = false): [ComputePickleDataVersion]
  computePickleDockerImages(deprecated: Boolean = false): [ComputePickleDockerImage]
  triggerLogs(triggerId: ID!): [InvocationLog]
  diagnosticsTriggerLogs(pickleId: ID!): [InvocationLog]
  listDatasets(round: Int, tournament: Int): [String]
  dataset(filename: String!, round: Int, tournament: Int): String
}

type Mutation {
  addModel(name: String!, tournament: Int!): Model
  createComputePickleUpload(
    filename: String!
    tournament: Int!
    modelId: String
    dataVersionId: String
    dockerImageId: String
    source: String
  ): ComputePickleUpload
  assignPickleToModel(modelId: String, pickleId: ID): String
  triggerComputePickleUpload(
    modelId: ID
    pickleId: ID
    triggerValidation: Boolean = false
  ): ComputePickleUpload
  updatePickleLabel(pickleId: ID!, label: String): ComputePickleUpload
  setSubmissionWebhook(modelId: String, newSubmissionWebhook: String): String
}

type ApiTokenInfo {
  accountUsername: String
  name: String
  publicId: String
  scopes: [String]
}

type Account {
  id: ID
  username: String
  email: String
  insertedAt: Time
  models: [Model]
}

type Model {
  id: ID
  name: String
  tournament: Int
  submissionWebhook: String
  computePickleUpload: ComputePickleUpload
}

type FileUploadAuth {
  accelerated: Boolean
  countryCode: String
  filename: String
  url: String
}

type ComputePickleUpload {
  id: ID
  filename: String
  label: String
  modelId: String
  assignedModelSlots: [ID]
  dataVersion: String
  dataVersionId: ID
  dockerImage: String
  dockerImageId: ID
  dockerImageName: String
  runtime: String
  validationStatus: String
  diagnosticsId: String
  diagnosticsStatus: String
  diagnosticsStatusDescription: String
  triggerStatus: String
  triggers: [ComputePickleTrigger]
  insertedAt: Time
  updatedAt: Time
  version: Int
}

type ComputePickleTrigger {
  id: ID
  computePickleUploadId: ID
  type: String
  status: String
  roundId: ID
  submissionId: ID
  statuses: [ComputePickleTriggerStatus]
  insertedAt: Time
  updatedAt: Time
}

type ComputePickleTriggerStatus {
  id: ID
  computePickleTriggerId: ID
  status: String
  description: String
  insertedAt: Time
  updatedAt: Time
}

type ComputePickleDataVersion {
  id: ID
  name: String
  type: String
  version: String
  default: Boolean
  deprecated: Boolean
  experimental: Boolean
}

type ComputePickleDockerImage {
  id: ID
  name: String
  image: String
  tag: String
  default: Boolean
  deprecated: Boolean
  experimental: Boolean
  insertedAt: Time
}

type InvocationLog {
  message: String
  timestamp: Int
}
"""
