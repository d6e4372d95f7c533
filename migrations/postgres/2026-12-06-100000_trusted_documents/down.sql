DROP TABLE trusted_documents;
