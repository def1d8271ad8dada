from . import milvus_pb2 as _milvus_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InsertParamRaw(_message.Message):
    __slots__ = ("collection_name", "row_record_array", "row_id_array", "partition_tag", "extra_params")
    COLLECTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ROW_RECORD_ARRAY_FIELD_NUMBER: _ClassVar[int]
    ROW_ID_ARRAY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TAG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection_name: str
    row_record_array: _containers.RepeatedScalarFieldContainer[bytes]
    row_id_array: _containers.RepeatedScalarFieldContainer[int]
    partition_tag: str
    extra_params: _containers.RepeatedCompositeFieldContainer[_milvus_pb2.KeyValuePair]
    def __init__(self, collection_name: _Optional[str] = ..., row_record_array: _Optional[_Iterable[bytes]] = ..., row_id_array: _Optional[_Iterable[int]] = ..., partition_tag: _Optional[str] = ..., extra_params: _Optional[_Iterable[_Union[_milvus_pb2.KeyValuePair, _Mapping]]] = ...) -> None: ...

class SearchParamRaw(_message.Message):
    __slots__ = ("collection_name", "partition_tag_array", "query_record_array", "topk", "extra_params")
    COLLECTION_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TAG_ARRAY_FIELD_NUMBER: _ClassVar[int]
    QUERY_RECORD_ARRAY_FIELD_NUMBER: _ClassVar[int]
    TOPK_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection_name: str
    partition_tag_array: _containers.RepeatedScalarFieldContainer[str]
    query_record_array: _containers.RepeatedScalarFieldContainer[bytes]
    topk: int
    extra_params: _containers.RepeatedCompositeFieldContainer[_milvus_pb2.KeyValuePair]
    def __init__(self, collection_name: _Optional[str] = ..., partition_tag_array: _Optional[_Iterable[str]] = ..., query_record_array: _Optional[_Iterable[bytes]] = ..., topk: _Optional[int] = ..., extra_params: _Optional[_Iterable[_Union[_milvus_pb2.KeyValuePair, _Mapping]]] = ...) -> None: ...

class SearchInFilesParamRaw(_message.Message):
    __slots__ = ("file_id_array", "search_param")
    FILE_ID_ARRAY_FIELD_NUMBER: _ClassVar[int]
    SEARCH_PARAM_FIELD_NUMBER: _ClassVar[int]
    file_id_array: _containers.RepeatedScalarFieldContainer[str]
    search_param: SearchParamRaw
    def __init__(self, file_id_array: _Optional[_Iterable[str]] = ..., search_param: _Optional[_Union[SearchParamRaw, _Mapping]] = ...) -> None: ...
