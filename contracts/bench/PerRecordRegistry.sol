// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title PerRecordRegistry (benchmark baseline only)
/// @notice Stores every image record on chain: a hash of its CID and its ciphertext sha256,
/// two storage slots per record, plus one event per record. bench/gas.py compares its gas per
/// image with VeilRegistry's one Merkle root per data set.
contract PerRecordRegistry {
    struct Record {
        bytes32 cidHash;
        bytes32 sha256Digest;
    }

    event RecordStored(uint256 indexed datasetId, uint256 indexed index, bytes32 cidHash, bytes32 sha256Digest);

    mapping(uint256 => Record[]) private _records;

    function addRecords(uint256 datasetId, bytes32[] calldata cidHashes, bytes32[] calldata digests)
        external
    {
        require(cidHashes.length == digests.length, "length mismatch");
        Record[] storage records = _records[datasetId];
        for (uint256 i = 0; i < cidHashes.length; ++i) {
            emit RecordStored(datasetId, records.length, cidHashes[i], digests[i]);
            records.push(Record({cidHash: cidHashes[i], sha256Digest: digests[i]}));
        }
    }

    function recordCount(uint256 datasetId) external view returns (uint256) {
        return _records[datasetId].length;
    }
}
